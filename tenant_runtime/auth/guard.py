"""The runtime's guard: a request needs a principal, from a session or a service token.

The SSO middleware sets `scope["principal"]` for a valid user session. Static service
tokens (like Backstage's external access tokens) are configured in
`BACKLOT_RUNTIME_SERVICE_TOKENS` as a JSON list of `{"token_sha256": <hex>}` or
`{"token": <str>}` entries, each with a `subject` and an optional `role`.
Tokens are compared by their SHA-256 digest in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from tenant_runtime.auth.principal import ROLE_ORDER, Principal, Role

PRINCIPAL_SCOPE_KEY = "principal"
SERVICE_TOKENS_STATE_KEY = "service_tokens"
DEFAULT_SERVICE_ROLE: Role = "member"


class InvalidServiceTokens(ValueError):
    """The configured service tokens cannot be read; the message never holds a token."""


@dataclass(frozen=True)
class ServiceToken:
    digest: bytes
    subject: str
    role: Role


class ServiceTokens:
    """The configured static tokens, looked up by the SHA-256 of the presented token."""

    def __init__(self, tokens: list[ServiceToken]) -> None:
        self._tokens = tokens

    @classmethod
    def parse(cls, raw: str) -> ServiceTokens:
        try:
            entries = json.loads(raw or "[]")
        except json.JSONDecodeError as error:
            raise InvalidServiceTokens(
                f"service tokens must be a JSON list (error at position {error.pos})"
            ) from None
        if not isinstance(entries, list):
            raise InvalidServiceTokens("service tokens must be a JSON list of objects")
        return cls([_service_token(position, entry) for position, entry in enumerate(entries)])

    def authenticate(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found: ServiceToken | None = None
        # Compare against every entry so the time taken does not say which one matched.
        for token in self._tokens:
            if hmac.compare_digest(token.digest, digest):
                found = token
        if found is None:
            return None
        return Principal(kind="service", subject=found.subject, role=found.role)


def _service_token(position: int, entry: object) -> ServiceToken:
    if not isinstance(entry, Mapping):
        raise InvalidServiceTokens(f"service token {position} must be an object")
    subject = entry.get("subject")
    if not isinstance(subject, str) or not subject:
        raise InvalidServiceTokens(f"service token {position} needs a non-empty subject")
    role = entry.get("role", DEFAULT_SERVICE_ROLE)
    if role not in ROLE_ORDER:
        raise InvalidServiceTokens(
            f"service token {position} ({subject}): role must be one of {', '.join(ROLE_ORDER)}"
        )
    if isinstance(entry.get("token_sha256"), str):
        try:
            digest = bytes.fromhex(entry["token_sha256"])
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise InvalidServiceTokens(
                f"service token {position} ({subject}): token_sha256 must be 64 hex digits"
            )
    elif isinstance(entry.get("token"), str) and entry["token"]:
        digest = hashlib.sha256(entry["token"].encode()).digest()
    else:
        raise InvalidServiceTokens(
            f"service token {position} ({subject}) needs token_sha256 or token"
        )
    return ServiceToken(digest=digest, subject=subject, role=cast(Role, role))


def service_tokens_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ServiceTokens:
    """The app's parsed tokens, read from the settings once and kept on the app state."""
    state = connection.app.state
    tokens = state.get(SERVICE_TOKENS_STATE_KEY)
    if tokens is None:
        tokens = ServiceTokens.parse(state.settings.service_tokens.get_secret_value())
        state[SERVICE_TOKENS_STATE_KEY] = tokens
    return cast(ServiceTokens, tokens)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The request's principal: from the session middleware, else from a service token."""
    principal = connection.scope.get(PRINCIPAL_SCOPE_KEY)
    if isinstance(principal, Principal):
        return principal
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    principal = service_tokens_of(connection).authenticate(token.strip())
    if principal is not None:
        connection.scope[PRINCIPAL_SCOPE_KEY] = principal  # type: ignore[literal-required]
    return principal


def requires_principal(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Admit a request with a user session or a valid service token; 401 otherwise."""
    if principal_of(connection) is None:
        raise NotAuthorizedException("Missing or invalid credentials: sign in or send a token")


def requires_role(
    role: Role,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    """A guard admitting principals with at least `role` (401 without one, 403 below it)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        requires_principal(connection, handler)
        principal = principal_of(connection)
        assert principal is not None
        if not principal.has_role(role):
            raise PermissionDeniedException(f"This needs the {role} role")

    return guard
