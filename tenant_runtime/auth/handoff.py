"""The login handoff from the control plane (contract §2): a 60-second EdDSA ticket."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenant_runtime.auth.config import SsoState
from tenant_runtime.auth.errors import AuthError
from tenant_runtime.auth.keys import KeySets
from tenant_runtime.auth.models import UsedHandoffTicket
from tenant_runtime.auth.principal import ROLE_ORDER
from tenant_runtime.auth.tokens import verify_jwt

logger = structlog.get_logger(__name__)

TICKET = "sign-in link"


def audience_for(tenant_id: str) -> str:
    return f"backlot-runtime:{tenant_id}"


def verify_ticket(
    ticket: str,
    *,
    state: SsoState,
    key_sets: KeySets,
    tenant_id: str,
    leeway: int,
    now: int | None = None,
) -> dict[str, Any]:
    """The ticket's claims if the control plane signed it for this tenant and it is fresh."""
    issuer = state.control_plane_issuer
    jwks_uri = state.control_plane_jwks_uri
    if not issuer or not jwks_uri:
        raise AuthError(
            "This portal is not connected to its Backlot console, so console sign-in is off.",
            status_code=503,
            log_event="handoff.no_control_plane",
        )
    claims = verify_jwt(
        ticket,
        key_sets.get(jwks_uri, "Backlot console"),
        algorithms=["EdDSA"],
        issuer=issuer,
        audience=audience_for(tenant_id),
        leeway=leeway,
        what=TICKET,
        now=now,
    )
    if claims.get("role") not in ROLE_ORDER or not isinstance(claims.get("email"), str):
        raise AuthError(
            "The sign-in link is incomplete; open the portal from the console again.",
            log_event="handoff.incomplete_claims",
            present=sorted(claims),
        )
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise AuthError(
            "The sign-in link is incomplete; open the portal from the console again.",
            log_event="handoff.no_jti",
        )
    return claims


def consume_ticket(session: Session, claims: dict[str, Any]) -> None:
    """Remember the ticket's jti so the same link never signs anyone in twice."""
    jti = str(claims["jti"])[:64]
    expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
    replay = AuthError(
        "This sign-in link was already used; open the portal from the console again.",
        log_event="handoff.replayed_jti",
        jti=jti,
        sub=claims.get("sub"),
    )
    if session.get(UsedHandoffTicket, jti) is not None:
        raise replay
    try:
        with session.begin_nested():
            session.add(UsedHandoffTicket(jti=jti, expires_at=expires))
    except IntegrityError as error:
        # Two requests with the same ticket at once: the second insert loses.
        raise replay from error
