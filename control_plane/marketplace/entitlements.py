"""A tenant's entitlements, computed and issued to its runtime as a signed, expiring token.

Entitlements = the plan's features and seat limit + every free plugin + premium plugins the
plan includes or the tenant bought. The runtime polls its config document every few seconds;
the ``plugins`` section hands it the current token, re-using the stored one until its content
changes or less than half its lifetime remains, so the runtime always holds a token with at
least half an hour (by default) to run on if the control plane goes away.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.settings import Settings
from control_plane.identity import signing
from control_plane.marketplace import service as marketplace
from control_plane.marketplace.models import EntitlementToken, Installation, Plugin
from control_plane.marketplace.plans import PLAN_TERMS, PlanTerms, plan_terms
from control_plane.runtime_link.service import ConfigSection
from control_plane.tenants.models import Tenant

# The plans' terms come from billing's catalog (see plans.py); re-exported here.
__all__ = ["PLAN_TERMS", "PlanTerms", "plan_terms"]

TOKEN_TYPE = "entitlements"  # noqa: S105 - the "typ" claim, not a secret


def audience(tenant: Tenant) -> str:
    return f"backlot-runtime:{tenant.id}"


def entitlement_content(session: Session, tenant: Tenant) -> dict[str, Any]:
    """The claims that say what the tenant may run (without the time-bound ones)."""
    terms = plan_terms(tenant.plan)
    installed = {plugin.key: row.version for plugin, row in marketplace.installed(session, tenant)}
    plugins = []
    for plugin in marketplace.entitled_plugins(session, tenant):
        version = installed.get(plugin.key)
        if version is None:
            newest = marketplace.newest_compatible(session, tenant, plugin)
            version = newest.version if newest is not None else None
        if version is not None:
            plugins.append({"id": plugin.key, "version": version, "tier": str(plugin.tier)})
    return {
        "sub": str(tenant.id),
        "typ": TOKEN_TYPE,
        "plan": tenant.plan,
        "plugins": plugins,
        "seat_limit": terms.seat_limit,
        "features": list(terms.features),
    }


def _digest(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def current_token(
    session: Session, settings: Settings, tenant: Tenant, *, at: dt.datetime | None = None
) -> str:
    """The tenant's token: the stored one if still right and fresh, else a new one."""
    moment = at or dt.datetime.now(dt.UTC)
    content = entitlement_content(session, tenant)
    digest = _digest(content)
    lifetime = dt.timedelta(seconds=settings.entitlement_token_lifetime_seconds)
    stored = session.scalar(select(EntitlementToken).where(EntitlementToken.tenant_id == tenant.id))
    if (
        stored is not None
        and stored.content_digest == digest
        and stored.expires_at - moment > lifetime / 2
    ):
        return stored.token
    issued = int(moment.timestamp())
    claims = {
        **content,
        "iss": settings.resolved_public_url,
        "aud": audience(tenant),
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": str(uuid.uuid4()),
    }
    token = signing.sign(session, claims, settings=settings)
    if stored is None:
        stored = EntitlementToken(tenant_id=tenant.id)
        session.add(stored)
    stored.token = token
    stored.content_digest = digest
    stored.issued_at = dt.datetime.fromtimestamp(issued, dt.UTC)
    stored.expires_at = dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
    session.flush()
    return token


def install_secret(
    settings: Settings, tenant: Tenant, plugin: Plugin, row: Installation, key: str
) -> str:
    """A per-install secret (e.g. a webhook signing secret), derived, so never stored."""
    message = f"plugin-secret:{tenant.id}:{plugin.key}:{row.id}:{key}".encode()
    return hmac.new(settings.session_secret, message, hashlib.sha256).hexdigest()


def runtime_config(
    settings: Settings, tenant: Tenant, plugin: Plugin, row: Installation
) -> dict[str, Any]:
    generated = {
        key: install_secret(settings, tenant, plugin, row, key) for key in plugin.generated_secrets
    }
    return {**marketplace.plain_config(row, settings), **generated}


def plugins_section(settings: Settings) -> ConfigSection:
    """The ``plugins`` section of the runtime's config document (contracts §4)."""

    def section(session: Session, tenant: Tenant) -> dict[str, Any]:
        return {
            "entitlements": current_token(session, settings, tenant),
            "installed": [
                {
                    "id": plugin.key,
                    "version": row.version,
                    "config": runtime_config(settings, tenant, plugin, row),
                }
                for plugin, row in marketplace.installed(session, tenant)
            ],
        }

    return section
