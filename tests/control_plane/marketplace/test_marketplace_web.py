"""The tenant plugin API, the console page and the operator API through the real app."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.identity.models import Role
from control_plane.marketplace import service as marketplace
from control_plane.marketplace.models import Tier
from tests.control_plane.factories import PASSWORD, make_tenant

pytestmark = [pytest.mark.marketplace, pytest.mark.integration]

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[Client]:
    with TestClient(app=create_app(settings, sessions=sessions)) as test_client:
        yield test_client


def _log_in(client: Client, session: Session, role: Role = Role.OWNER) -> str:
    user, _, _ = make_tenant(session, role=role)
    session.commit()
    csrf = re.search(r'name="_csrf_token" value="([^"]*)"', client.get("/login").text)
    assert csrf is not None
    response = client.post(
        "/login", data={"_csrf_token": csrf.group(1), "email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    return client.cookies["backlot_csrf"]


@pytest.fixture
def future_only(db_session: Session) -> str:
    """A plugin whose only version needs a runtime release no portal runs yet."""
    key = f"future-{uuid.uuid4().hex[:8]}"
    plugin = marketplace.save_plugin(
        db_session,
        marketplace.PluginDraft(key, "Future", "Soon", "Acme", Tier.FREE),
    )
    marketplace.publish_version(db_session, plugin, marketplace.VersionDraft("1.0.0", ">=5"))
    db_session.commit()
    return key


def test_the_api_refuses_an_incompatible_install_with_the_reason(
    client: Client, db_session: Session, future_only: str
) -> None:
    csrf = _log_in(client, db_session)
    response = client.post(
        f"/api/v1/tenant/plugins/{future_only}/install", json={}, headers={"x-csrftoken": csrf}
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "no version of Future runs on runtime release 0.1.0"


def test_the_api_installs_a_free_plugin(client: Client, db_session: Session) -> None:
    csrf = _log_in(client, db_session)
    response = client.post(
        "/api/v1/tenant/plugins/cost/install", json={}, headers={"x-csrftoken": csrf}
    )
    listed = client.get("/api/v1/tenant/plugins/cost").json()
    assert (response.status_code, listed["installed_version"]) == (201, "1.0.0")


def test_a_member_cannot_install(client: Client, db_session: Session) -> None:
    csrf = _log_in(client, db_session, role=Role.MEMBER)
    response = client.post(
        "/api/v1/tenant/plugins/cost/install", json={}, headers={"x-csrftoken": csrf}
    )
    assert response.status_code == 403


def test_the_console_lists_and_searches_the_marketplace(
    client: Client, db_session: Session
) -> None:
    _log_in(client, db_session)
    page = client.get("/console/plugins/", params={"q": "markdown"})
    assert page.status_code == 200
    assert re.findall(r'id="plugin-([a-z0-9-]+)"', page.text) == ["techdocs"]


def test_the_operator_api_needs_an_operator_token(client: Client) -> None:
    response = client.post(
        "/admin/v1/plugins/cicd/versions", json={"version": "9.0.0", "runtime_releases": ">=0"}
    )
    assert response.status_code == 401
