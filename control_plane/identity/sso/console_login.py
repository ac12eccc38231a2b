"""Console login through the organization's identity provider (OIDC, with Authlib).

Authorization code flow with PKCE, state and nonce. The ID token is checked against the
provider's published keys (signature, issuer, audience, expiry, nonce), then its email must
belong to a member of that organization: the console does not create users on the fly.
"""

from __future__ import annotations

import secrets
import time
import warnings
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import structlog
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.crypto import secret_box
from control_plane.core.errors import DomainError, NotAllowed
from control_plane.core.settings import Settings
from control_plane.identity.models import Membership, Organization, SsoConfiguration, User
from control_plane.identity.service import organization_of
from control_plane.identity.sso import service as sso
from control_plane.tenants import service as tenants
from control_plane.tenants.models import Tenant

log = structlog.get_logger(__name__)

CALLBACK_PATH = "/login/sso/callback"
# How long the round trip through the identity provider may take.
LOGIN_WINDOW_SECONDS = 600
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
NOT_CONFIGURED = (
    "No single sign-on is set up for that email or organization; log in with your password."
)


class SsoLoginFailed(DomainError):
    status_code = 401


@dataclass(frozen=True)
class PendingLogin:
    """What the browser's session holds while it is away at the identity provider."""

    tenant_id: str
    state: str
    nonce: str
    code_verifier: str
    next: str
    started: float

    def as_session(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _redirect_uri(settings: Settings) -> str:
    return f"{settings.resolved_public_url}{CALLBACK_PATH}"


def _client(settings: Settings, oidc: dict[str, Any]) -> OAuth2Client:
    return OAuth2Client(
        client_id=oidc["client_id"],
        client_secret=secret_box(settings).decrypt(oidc["client_secret_encrypted"]),
        scope=" ".join(oidc["scopes"]),
        redirect_uri=_redirect_uri(settings),
        code_challenge_method="S256",
        timeout=settings.sso_fetch_timeout_seconds,
    )


def find_tenant(session: Session, identifier: str) -> Tenant | None:
    """The portal of the organization named by a member's email or the organization's slug."""
    identifier = identifier.strip().lower()
    if "@" in identifier:
        user = session.scalar(select(User).where(User.email == identifier))
        found = organization_of(session, user.id) if user is not None else None
        organization = found[0] if found else None
    else:
        organization = session.scalar(select(Organization).where(Organization.slug == identifier))
    if organization is None:
        return None
    try:
        return tenants.tenant_of_organization(session, organization.id)
    except DomainError:
        return None


def _live_oidc(config: SsoConfiguration | None) -> dict[str, Any] | None:
    if config is None or not config.enabled or config.live is None:
        return None
    oidc: dict[str, Any] | None = config.live.get("oidc")
    return oidc


def offers_sso(session: Session, tenant: Tenant) -> bool:
    return _live_oidc(sso.configuration(session, tenant.id)) is not None


def begin(
    session: Session, settings: Settings, identifier: str, next_path: str
) -> tuple[str, PendingLogin]:
    """The provider's authorization URL, and what to keep in the session until the callback."""
    tenant = find_tenant(session, identifier)
    oidc = _live_oidc(sso.configuration(session, tenant.id)) if tenant else None
    if tenant is None or oidc is None:
        raise NotAllowed(NOT_CONFIGURED)
    pending = PendingLogin(
        tenant_id=str(tenant.id),
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        code_verifier=secrets.token_urlsafe(48),
        next=next_path,
        started=time.time(),
    )
    with _client(settings, oidc) as client:
        url, _ = client.create_authorization_url(
            oidc["endpoints"]["authorization_endpoint"],
            state=pending.state,
            nonce=pending.nonce,
            code_verifier=pending.code_verifier,
        )
    log.info("console_sso.started", tenant_id=str(tenant.id))
    return url, pending


def _verify_id_token(
    settings: Settings, oidc: dict[str, Any], id_token: str, nonce: str
) -> dict[str, Any]:
    try:
        response = httpx.get(
            oidc["endpoints"]["jwks_uri"], timeout=settings.sso_fetch_timeout_seconds
        )
        response.raise_for_status()
        keys = KeySet.import_key_set(response.json())
    except (httpx.HTTPError, ValueError, JoseError) as exc:
        log.warning("console_sso.jwks_unavailable", error=type(exc).__name__)
        raise SsoLoginFailed(
            "Your identity provider's signing keys could not be fetched; try again."
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc flags EdDSA; some providers still use it
            token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": oidc["issuer"]},
            aud={"essential": True, "value": oidc["client_id"]},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except JoseError as exc:
        log.warning("console_sso.id_token_refused", error=exc.error, reason=exc.description)
        raise SsoLoginFailed(
            f"The identity provider's answer was refused ({exc.error}); try again."
        ) from None
    return dict(token.claims)


def complete(
    session: Session, settings: Settings, pending: dict[str, Any] | None, params: dict[str, str]
) -> tuple[User, Membership, Tenant, str]:
    """Finish the login: the console user, their membership and the page to go to."""
    if not pending:
        raise SsoLoginFailed("This sign-in was not started here; start again from the login page.")
    if time.time() - float(pending["started"]) > LOGIN_WINDOW_SECONDS:
        raise SsoLoginFailed("This sign-in took too long; start again.")
    if not secrets.compare_digest(params.get("state", ""), str(pending["state"])):
        log.warning("console_sso.state_mismatch")
        raise SsoLoginFailed("This sign-in does not match the one started here; start again.")
    if "error" in params:
        reason = params.get("error_description") or params["error"]
        raise SsoLoginFailed(f"Your identity provider refused the sign-in: {reason}.")
    tenant = session.get(Tenant, UUID(str(pending["tenant_id"])))
    oidc = _live_oidc(sso.configuration(session, tenant.id)) if tenant else None
    if tenant is None or oidc is None:
        raise SsoLoginFailed(NOT_CONFIGURED)
    try:
        with _client(settings, oidc) as client:
            tokens = client.fetch_token(
                oidc["endpoints"]["token_endpoint"],
                code=params.get("code", ""),
                code_verifier=str(pending["code_verifier"]),
                grant_type="authorization_code",
            )
    except Exception as exc:  # Authlib raises OAuthError, httpx transport errors, ValueError
        log.warning("console_sso.token_exchange_failed", error=type(exc).__name__)
        raise SsoLoginFailed(
            "Your identity provider did not accept the sign-in code; start again."
        ) from None
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise SsoLoginFailed("Your identity provider sent no ID token.")
    claims = _verify_id_token(settings, oidc, id_token, str(pending["nonce"]))
    email = claims.get(oidc["claims"]["email"])
    if not isinstance(email, str) or not email or claims.get("email_verified") is False:
        raise SsoLoginFailed("Your identity provider sent no verified email address.")
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    membership = (
        session.scalar(
            select(Membership).where(
                Membership.user_id == user.id,
                Membership.organization_id == tenant.organization_id,
            )
        )
        if user is not None and user.is_active
        else None
    )
    if user is None or membership is None:
        log.info("console_sso.no_console_account", tenant_id=str(tenant.id))
        raise NotAllowed(
            f"{email} has no console account in this organization; ask an owner to invite you."
        )
    log.info("console_sso.succeeded", tenant_id=str(tenant.id), user_id=str(user.id))
    return user, membership, tenant, str(pending["next"])
