"""The control plane's pages and tenant API through the real app, on PostgreSQL and Redis."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.identity.models import Organization, Role
from control_plane.outbox.models import OutboxMessage
from control_plane.provisioning.models import Operation
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from control_plane.tenants.service import RECONCILE_TASK
from tests.control_plane.factories import PASSWORD, make_tenant

pytestmark = pytest.mark.integration

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def broker(settings: Settings) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(settings.resolved_broker_url)
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def client(
    settings: Settings, sessions: sessionmaker[Session], broker: redis.Redis
) -> Iterator[Client]:
    with TestClient(app=create_app(settings, sessions=sessions)) as test_client:
        yield test_client


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden input {name}"
    return match.group(1)


def _signup(client: Client, **overrides: str) -> tuple[dict[str, str], httpx.Response]:
    page = client.get("/signup").text
    form = {
        "_csrf_token": _hidden(page, "_csrf_token"),
        "signup_token": _hidden(page, "signup_token"),
        "organization_name": "Initech Labs",
        "slug": "initech",
        "email": "owner@example.com",
        "password": PASSWORD,
        "plan": "free",
    }
    form.update(overrides)
    return form, client.post("/signup", data=form, follow_redirects=False)


def _organizations(db_session: Session) -> int:
    return db_session.scalar(select(func.count()).select_from(Organization)) or 0


def test_health_and_readiness(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_readiness_fails_on_a_database_without_the_schema(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'empty.db'}"})
    with TestClient(app=create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "database schema is not at head: run `backlot migrate`"


def test_the_openapi_document_names_the_tenant_api(client: Client) -> None:
    document = client.get("/schema/openapi.json").json()
    operation_ids = {
        op["operationId"] for path in document["paths"].values() for op in path.values()
    }
    assert {"getTenant", "listTenantEvents", "checkSlug", "healthz", "readyz"} <= operation_ids


def test_the_slug_check_suggests_and_refuses(client: Client) -> None:
    assert client.get("/signup/slug", params={"name": "Acme Corp."}).json() == {
        "slug": "acme-corp",
        "available": True,
        "message": "Available.",
    }
    refused = client.get("/signup/slug", params={"slug": "admin"}).json()
    assert refused["available"] is False
    assert "reserved" in refused["message"]


def test_a_signup_is_recorded_relayed_and_signed_in(
    client: Client, db_session: Session, broker: redis.Redis
) -> None:
    _, response = _signup(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/progress"

    message = db_session.scalars(select(OutboxMessage)).one()
    assert message.sent_at is not None, "the outbox was not relayed after commit"
    queued = [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]
    assert [(m["headers"]["task"], m["headers"]["id"]) for m in queued] == [
        (RECONCILE_TASK, str(message.id))
    ]

    status = client.get("/api/v1/tenant").json()
    assert (status["slug"], status["organization"], status["state"]) == (
        "initech",
        "Initech Labs",
        "pending",
    )
    progress = client.get("/console/progress")
    assert progress.status_code == 200
    assert 'data-step="queued" data-status="active"' in progress.text


def test_an_invalid_signup_shows_why_and_creates_nothing(
    client: Client, db_session: Session
) -> None:
    _, response = _signup(client, slug="admin", email="nope")
    assert response.status_code == 422
    assert "“admin” is reserved; please choose another address." in response.text
    assert "That email address is not valid" in response.text
    assert 'value="Initech Labs"' in response.text, "the form keeps what was typed"
    assert PASSWORD not in response.text, "the password is never echoed back"
    assert _organizations(db_session) == 0


def test_a_signup_without_the_csrf_token_is_refused(client: Client, db_session: Session) -> None:
    _, response = _signup(client, _csrf_token="forged")
    assert response.status_code == 403
    assert _organizations(db_session) == 0


def test_a_double_submit_lands_on_the_first_signup(client: Client, db_session: Session) -> None:
    form, first = _signup(client)
    second = client.post("/signup", data=form, follow_redirects=False)
    assert (first.status_code, second.status_code) == (303, 303)
    assert second.headers["location"] == "/console/progress"
    assert _organizations(db_session) == 1


def test_the_console_and_api_need_a_login(client: Client) -> None:
    page = client.get("/console", headers={"accept": "text/html"}, follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (302, "/login?next=%2Fconsole")
    api = client.get("/api/v1/tenant")
    assert (api.status_code, api.json()["detail"]) == (401, "Log in to continue.")


def test_login_and_logout(client: Client, db_session: Session) -> None:
    user, _, _ = make_tenant(db_session)
    login_page = client.get("/login").text
    csrf = _hidden(login_page, "_csrf_token")

    wrong = client.post(
        "/login", data={"_csrf_token": csrf, "email": user.email, "password": "wrong-password!"}
    )
    assert wrong.status_code == 401
    assert "That email and password do not match an account." in wrong.text

    right = client.post(
        "/login",
        data={
            "_csrf_token": csrf,
            "email": user.email.upper(),
            "password": PASSWORD,
            "next": "//evil.example",
        },
        follow_redirects=False,
    )
    assert (right.status_code, right.headers["location"]) == (303, "/console")
    assert client.get("/api/v1/tenant").status_code == 200

    out = client.post("/logout", data={"_csrf_token": csrf}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert client.get("/api/v1/tenant").status_code == 401


def _log_in(client: Client, email: str) -> str:
    csrf = _hidden(client.get("/login").text, "_csrf_token")
    response = client.post(
        "/login", data={"_csrf_token": csrf, "email": email, "password": PASSWORD}
    )
    assert response.status_code == 200
    return csrf


def test_an_owner_retries_a_failed_portal(client: Client, db_session: Session) -> None:
    user, _, tenant = make_tenant(db_session)
    tenant.state = TenantState.FAILED
    tenant.failure_reason = "RuntimeCrashed: boom"
    db_session.flush()
    csrf = _log_in(client, user.email)

    progress = client.get("/console/progress/steps")
    assert 'data-status="failed"' in progress.text
    assert "RuntimeCrashed: boom" in progress.text

    response = client.post("/console/retry", data={"_csrf_token": csrf}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/console/progress")
    db_session.expire_all()
    refreshed = db_session.get(Tenant, tenant.id)
    assert refreshed is not None
    assert (refreshed.state, refreshed.generation, refreshed.failure_reason) == (
        TenantState.PROVISIONING,
        2,
        None,
    )
    generations = db_session.scalars(
        select(Operation.generation).where(Operation.tenant_id == tenant.id)
    ).all()
    assert sorted(generations) == [1, 2]
    events = client.get("/api/v1/tenant/events").json()
    assert (events[0]["from_state"], events[0]["to_state"], events[0]["reason"]) == (
        "failed",
        "provisioning",
        "RetryRequested",
    )


def test_a_member_cannot_retry(client: Client, db_session: Session) -> None:
    user, _, tenant = make_tenant(db_session, role=Role.MEMBER)
    tenant.state = TenantState.FAILED
    db_session.flush()
    csrf = _log_in(client, user.email)
    response = client.post("/console/retry", data={"_csrf_token": csrf})
    assert response.status_code == 403


def test_retrying_a_portal_that_has_not_failed_is_a_conflict(
    client: Client, db_session: Session
) -> None:
    user, _, _ = make_tenant(db_session)
    csrf = _log_in(client, user.email)
    response = client.post(
        "/console/retry", data={"_csrf_token": csrf}, headers={"accept": "application/json"}
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "only a failed portal can be retried; this one is pending"
