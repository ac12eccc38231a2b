"""Operators sign in through the vendor's own OpenID provider and get a short-lived token.

Authorization code with PKCE, state and nonce (Authlib); the ID token is checked against the
provider's keys (joserfc). Who may operate, and with which scopes, is configuration
(``operator_oidc_scopes``): a valid login of anyone else is refused and audited. The token
issued is an ordinary operator token that expires, so the CLI and the API treat both alike.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6749.errors import OAuth2Error
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from litestar import Controller, Request, get
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect
from requests import RequestException

from control_plane.audit import service as audit
from control_plane.core.errors import DomainError, ServiceUnavailable
from control_plane.core.settings import Settings
from control_plane.core.web import DbSession, plane
from control_plane.fleet import operators

TOKEN_LIFETIME = dt.timedelta(hours=8)
_SESSION_KEY = "operator_login"


class LoginNotConfigured(DomainError):
    status_code = 404


@dataclass(frozen=True, slots=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def _provider(settings: Settings) -> Provider:
    issuer = settings.operator_oidc_issuer.rstrip("/")
    if not issuer or not settings.operator_oidc_client_id:
        raise LoginNotConfigured(
            "operator sign-in is not configured (BACKLOT_OPERATOR_OIDC_ISSUER and "
            "BACKLOT_OPERATOR_OIDC_CLIENT_ID); use an operator token instead"
        )
    try:
        document = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        return Provider(
            issuer=document["issuer"].rstrip("/"),
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks_uri=document["jwks_uri"],
        )
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise ServiceUnavailable(
            f"the operators' OpenID provider cannot be reached: {exc}"
        ) from exc


def _client(settings: Settings) -> OAuth2Session:
    return OAuth2Session(
        client_id=settings.operator_oidc_client_id,
        client_secret=settings.operator_oidc_client_secret.get_secret_value() or None,
        scope="openid email profile",
        redirect_uri=f"{settings.resolved_public_url}/admin/v1/login/callback",
        code_challenge_method="S256",
    )


def _allowed(settings: Settings) -> dict[str, list[str]]:
    allowed: dict[str, list[str]] = json.loads(settings.operator_oidc_scopes or "{}")
    return {email.lower(): scopes for email, scopes in allowed.items()}


class OperatorLoginController(Controller):
    """Sign-in for operators; outside the admin API's token guard, since it hands tokens out."""

    path = "/admin/v1/login"
    tags = ["admin"]

    @get("/", operation_id="adminLogin", sync_to_thread=True, status_code=302)
    def login(self, request: Request[Any, Any, Any]) -> Redirect:
        """Send the operator to the OpenID provider."""
        settings = plane(request.app.state).settings
        provider = _provider(settings)
        verifier, nonce = generate_token(48), generate_token(24)
        url, state = _client(settings).create_authorization_url(
            provider.authorization_endpoint, code_verifier=verifier, nonce=nonce
        )
        request.session[_SESSION_KEY] = {"state": state, "nonce": nonce, "verifier": verifier}
        return Redirect(path=url, status_code=302)

    @get("/callback", operation_id="adminLoginCallback", sync_to_thread=True)
    def callback(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        code: FromQuery[str] = "",
        returned_state: Annotated[str, QueryParameter(name="state")] = "",
    ) -> dict[str, Any]:
        """Check the provider's answer and hand out an operator token that expires."""
        settings = plane(request.app.state).settings
        pending = request.session.pop(_SESSION_KEY, None) if request.session else None
        if not pending or not returned_state or returned_state != pending["state"] or not code:
            raise NotAuthorizedException(
                "this sign-in was not started here or has expired; start again"
            )
        provider = _provider(settings)
        try:
            answer = _client(settings).fetch_token(
                provider.token_endpoint, code=code, code_verifier=pending["verifier"]
            )
            keys = KeySet.import_key_set(httpx.get(provider.jwks_uri, timeout=10).json())
            token = jwt.decode(answer["id_token"], keys)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": provider.issuer},
                aud={"essential": True, "value": settings.operator_oidc_client_id},
                nonce={"essential": True, "value": pending["nonce"]},
                email={"essential": True},
            ).validate(token.claims)
        except (
            OAuth2Error,
            RequestException,
            httpx.HTTPError,
            JoseError,
            KeyError,
            ValueError,
        ) as exc:
            raise NotAuthorizedException(
                f"the OpenID provider's answer was not accepted: {exc}"
            ) from exc
        email = str(token.claims["email"]).lower()
        scopes = _allowed(settings).get(email)
        if not scopes or token.claims.get("email_verified") is False:
            with plane(request.app.state).sessions() as record:
                audit.record(
                    record,
                    actor=f"oidc:{email}",
                    action="operator.login-denied",
                    details={"why": "not an operator" if not scopes else "e-mail not verified"},
                )
                record.commit()
            raise PermissionDeniedException(f"{email} is not an operator of this control plane")
        row, plain = operators.issue(
            db_session,
            name="signed in",
            operator=email,
            scopes=scopes,
            expires_in=TOKEN_LIFETIME,
        )
        audit.record(
            db_session,
            actor=f"operator:{email}",
            action="operator.login",
            details={"token_id": str(row.id), "scopes": sorted(scopes), "issuer": provider.issuer},
        )
        return {
            "token": plain,
            "operator": email,
            "scopes": sorted(scopes),
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "use": "export BACKLOT_ADMIN_TOKEN=<token>",
        }
