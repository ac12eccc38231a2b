"""Sets `scope["principal"]` from the session cookie (contract §3) on every HTTP request."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

import anyio.to_thread
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.orm import Session, sessionmaker

from tenant_runtime.auth.principal import Principal
from tenant_runtime.auth.service import (
    SESSION_COOKIE,
    SessionPolicy,
    principal_for,
    resolve_session,
)


def session_cookie_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name != b"cookie":
            continue
        try:
            jar: SimpleCookie = SimpleCookie(value.decode("latin-1"))
        except CookieError:
            continue
        if SESSION_COOKIE in jar:
            return jar[SESSION_COOKIE].value
    return None


def _principal(
    factory: sessionmaker[Session], cookie: str, policy: SessionPolicy
) -> Principal | None:
    with factory() as session:
        user = resolve_session(session, cookie, policy)
        principal = None if user is None else principal_for(user)
        session.commit()
        return principal


def session_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            scope.pop("principal", None)  # type: ignore[typeddict-item]
            cookie = session_cookie_of(scope)
            if cookie:
                state = Litestar.from_scope(scope).state
                principal = await anyio.to_thread.run_sync(
                    _principal, state.session_factory, cookie, state.session_policy
                )
                if principal is not None:
                    scope["principal"] = principal  # type: ignore[typeddict-unknown-key]
        await app(scope, receive, send)

    return middleware
