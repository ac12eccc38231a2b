"""The runtime guard: a session principal or a configured service token, else 401."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send
from pydantic import SecretStr

from tenant_runtime.auth.guard import (
    InvalidServiceTokens,
    ServiceTokens,
    requires_principal,
    requires_role,
)
from tenant_runtime.auth.principal import Principal
from tenant_runtime.core.settings import RuntimeSettings

pytestmark = pytest.mark.catalog

TOKEN = "s3rvice-token-for-tests-0123456789"
ADMIN_TOKEN = "adm1n-token-for-tests-9876543210"


@get("/who", guards=[requires_principal], sync_to_thread=False)
def who(request: Request[Any, Any, Any]) -> dict[str, str]:
    principal = request.scope["principal"]  # type: ignore[typeddict-item]
    return {"kind": principal.kind, "subject": principal.subject, "role": principal.role}


@get("/admin-only", guards=[requires_role("admin")], sync_to_thread=False)
def admin_only() -> str:
    return "ok"


def session_middleware(app: ASGIApp) -> ASGIApp:
    """Stands in for the SSO team's session middleware: sets a user principal on a header."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if dict(scope.get("headers", [])).get(b"x-test-user"):
            scope["principal"] = Principal(kind="user", subject="u-1", role="viewer")  # type: ignore[typeddict-unknown-key]
        await app(scope, receive, send)

    return middleware


@pytest.fixture
def client(runtime_settings: RuntimeSettings) -> Iterator[TestClient[Litestar]]:
    tokens = [
        {"token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "subject": "ci-bot"},
        {"token": ADMIN_TOKEN, "subject": "exporter", "role": "admin"},
    ]
    settings = runtime_settings.model_copy(update={"service_tokens": SecretStr(json.dumps(tokens))})
    app = Litestar(
        [who, admin_only], state=State({"settings": settings}), middleware=[session_middleware]
    )
    with TestClient(app) as client:
        yield client


def test_no_credentials_is_401(client: TestClient[Litestar]) -> None:
    assert client.get("/who").status_code == 401


def test_an_unknown_token_is_401(client: TestClient[Litestar]) -> None:
    assert client.get("/who", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_service_token_by_digest_becomes_a_service_principal(
    client: TestClient[Litestar],
) -> None:
    response = client.get("/who", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.json() == {"kind": "service", "subject": "ci-bot", "role": "member"}


def test_a_session_principal_is_accepted(client: TestClient[Litestar]) -> None:
    response = client.get("/who", headers={"X-Test-User": "1"})

    assert response.json() == {"kind": "user", "subject": "u-1", "role": "viewer"}


def test_a_role_guard_refuses_a_lesser_role_with_403(client: TestClient[Litestar]) -> None:
    response = client.get("/admin-only", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 403


def test_a_role_guard_admits_the_role(client: TestClient[Litestar]) -> None:
    response = client.get("/admin-only", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    assert response.status_code == 200


def test_a_bad_token_list_is_refused_without_echoing_the_token() -> None:
    with pytest.raises(InvalidServiceTokens) as raised:
        ServiceTokens.parse(json.dumps([{"subject": "x", "token_sha256": "not-hex-secret"}]))

    assert "not-hex-secret" not in str(raised.value)
