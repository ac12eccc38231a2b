"""OpenID Connect login: authorization code with PKCE, state and nonce (Authlib), and ID
tokens checked against the provider's keys found through discovery."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6749.errors import OAuth2Error
from requests import RequestException

from tenant_runtime.auth.config import OidcSettings
from tenant_runtime.auth.errors import AuthError
from tenant_runtime.auth.keys import KeySets
from tenant_runtime.auth.tokens import verify_jwt

logger = structlog.get_logger(__name__)

ID_TOKEN = "sign-in token from your identity provider"  # noqa: S105 (a label)
# Discovery documents change rarely; keys rotate and are refetched on an unknown kid.
DISCOVERY_TTL_SECONDS = 300.0


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    algorithms: list[str]


@dataclass(frozen=True)
class OidcIdentity:
    subject: str
    email: str
    name: str | None
    groups: list[str]
    claims: dict[str, Any]
    id_token: str


class OidcClient:
    """Discovery cache and the two halves of a login."""

    def __init__(self, key_sets: KeySets, *, timeout: float, leeway: int) -> None:
        self._key_sets = key_sets
        self._timeout = timeout
        self._leeway = leeway
        self._lock = threading.Lock()
        self._discovered: dict[str, tuple[float, Discovery]] = {}

    def discover(self, issuer: str) -> Discovery:
        issuer = issuer.rstrip("/")
        with self._lock:
            cached = self._discovered.get(issuer)
        if cached is not None and time.monotonic() - cached[0] < DISCOVERY_TTL_SECONDS:
            return cached[1]
        url = f"{issuer}/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=self._timeout)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise AuthError(
                "Your identity provider cannot be reached right now; try again shortly, or "
                "ask your administrator to check the SSO issuer.",
                status_code=502,
                log_event="oidc.discovery_unreachable",
                issuer=issuer,
                error=type(error).__name__,
            ) from error
        if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != issuer:
            raise AuthError(
                "Your identity provider describes itself under another issuer than the one "
                "configured; ask your administrator to correct the SSO issuer.",
                status_code=502,
                log_event="oidc.wrong_issuer",
                issuer=issuer,
                presented=str(document.get("issuer"))[:200] if isinstance(document, dict) else None,
            )
        try:
            discovery = Discovery(
                issuer=issuer,
                authorization_endpoint=document["authorization_endpoint"],
                token_endpoint=document["token_endpoint"],
                jwks_uri=document["jwks_uri"],
                end_session_endpoint=document.get("end_session_endpoint"),
                algorithms=list(document.get("id_token_signing_alg_values_supported", ["RS256"])),
            )
        except KeyError as error:
            raise AuthError(
                "Your identity provider's discovery document is incomplete.",
                status_code=502,
                log_event="oidc.discovery_incomplete",
                issuer=issuer,
                missing=str(error),
            ) from error
        with self._lock:
            self._discovered[issuer] = (time.monotonic(), discovery)
        return discovery

    def _session(self, config: OidcSettings, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(
            client_id=config.client_id,
            client_secret=config.client_secret,
            scope=" ".join(config.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )

    def authorization_url(
        self, config: OidcSettings, redirect_uri: str
    ) -> tuple[str, str, str, str]:
        """(url, state, nonce, code_verifier) for a new login."""
        discovery = self.discover(config.issuer)
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(48)
        with self._session(config, redirect_uri) as client:
            url, _ = client.create_authorization_url(
                discovery.authorization_endpoint, state=state, nonce=nonce, code_verifier=verifier
            )
        return url, state, nonce, verifier

    def finish(
        self,
        config: OidcSettings,
        *,
        redirect_uri: str,
        code: str,
        code_verifier: str,
        nonce: str,
    ) -> OidcIdentity:
        discovery = self.discover(config.issuer)
        with self._session(config, redirect_uri) as client:
            try:
                token = client.fetch_token(
                    discovery.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                    timeout=self._timeout,
                )
            except OAuth2Error as error:
                raise AuthError(
                    "Your identity provider refused to complete the sign-in; try again.",
                    log_event="oidc.code_exchange_refused",
                    issuer=discovery.issuer,
                    error=error.error,
                ) from error
            except RequestException as error:
                raise AuthError(
                    "Your identity provider cannot be reached right now; try again shortly.",
                    status_code=502,
                    log_event="oidc.token_endpoint_unreachable",
                    issuer=discovery.issuer,
                    error=type(error).__name__,
                ) from error
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise AuthError(
                "Your identity provider sent no ID token; ask your administrator to include "
                "the `openid` scope.",
                log_event="oidc.no_id_token",
                issuer=discovery.issuer,
            )
        claims = self.validate_id_token(config, id_token, nonce=nonce)
        return identity_from_claims(config, claims, id_token)

    def validate_id_token(
        self, config: OidcSettings, id_token: str, *, nonce: str, now: int | None = None
    ) -> dict[str, Any]:
        discovery = self.discover(config.issuer)
        return verify_jwt(
            id_token,
            self._key_sets.get(discovery.jwks_uri, "identity provider"),
            algorithms=discovery.algorithms,
            issuer=discovery.issuer,
            audience=config.client_id,
            leeway=self._leeway,
            what=ID_TOKEN,
            now=now,
            nonce=nonce,
        )


def identity_from_claims(
    config: OidcSettings, claims: dict[str, Any], id_token: str
) -> OidcIdentity:
    names = config.claims
    groups = claims.get(names.groups) or []
    if isinstance(groups, str):
        groups = [groups]
    email = claims.get(names.email)
    name = claims.get(names.name)
    return OidcIdentity(
        subject=str(claims["sub"]),
        email=email if isinstance(email, str) else "",
        name=name if isinstance(name, str) else None,
        groups=[str(group) for group in groups],
        claims=claims,
        id_token=id_token,
    )
