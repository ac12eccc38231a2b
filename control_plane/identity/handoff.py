"""Tickets that carry a console user into their portal (cross-plane contract §2).

A ticket is a short JWT signed with the control plane's key; the runtime verifies it against
the JWKS, refuses a reused ``jti``, and opens a session. A test-connection ticket is the same
with an ``sso_test`` claim.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from control_plane.core.settings import Settings
from control_plane.identity import signing
from control_plane.identity.models import Role, User
from control_plane.tenants.models import Tenant

PORTAL_ROLES = {Role.OWNER: "admin", Role.ADMIN: "admin", Role.MEMBER: "member"}


def audience(tenant: Tenant) -> str:
    return f"backlot-runtime:{tenant.id}"


def display_name(user: User) -> str:
    return user.email.split("@", 1)[0]


def ticket_claims(
    settings: Settings,
    tenant: Tenant,
    user: User,
    role: Role,
    *,
    break_glass: bool = False,
    sso_test: str | None = None,
) -> dict[str, Any]:
    issued = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.resolved_public_url,
        "aud": audience(tenant),
        "sub": str(user.id),
        "email": user.email,
        "name": display_name(user),
        "role": "admin" if sso_test else PORTAL_ROLES[role],
        "iat": issued,
        "exp": issued + settings.handoff_ticket_seconds,
        "jti": str(uuid.uuid4()),
    }
    if break_glass:
        claims["break_glass"] = True
    if sso_test:
        claims["sso_test"] = sso_test
    return claims


def issue(session: Session, settings: Settings, claims: dict[str, Any]) -> str:
    return signing.sign(session, claims, settings=settings)


def runtime_link(tenant: Tenant, path: str, ticket: str) -> str:
    assert tenant.runtime_url, "a ticket is only issued for a portal that runs"
    return f"{tenant.runtime_url.rstrip('/')}{path}?{urlencode({'ticket': ticket})}"
