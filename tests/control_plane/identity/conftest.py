"""Fixtures for the identity tests: the app, a signed-in console user, a running Dex."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.identity.models import Organization, Role, SsoConfiguration, User
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from tests.control_plane.factories import PASSWORD, make_tenant
from tests.support.dex import DexClient, DexServer, DexUnavailable, DexUser, run_dex

Client = TestClient  # type: ignore[type-arg]

# Where a portal would run; nothing needs to answer there for the control-plane side.
RUNTIME_URL = "http://portal.test.invalid:7007"
CONSOLE_CALLBACK = "http://testserver.local/login/sso/callback"
DEX_CLIENT = DexClient(
    id="backlot-sso",
    secret="backlot-sso-secret",
    redirect_uris=[f"{RUNTIME_URL}/auth/oidc/callback", CONSOLE_CALLBACK],
)
DEX_ADMIN = DexUser(email="admin@example.com", username="admin", user_id="u-admin")


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden input {name}"
    return match.group(1)


@dataclass
class Console:
    """A test client signed in as one member of an organization with a running portal."""

    client: Client
    user: User
    organization: Organization
    tenant: Tenant
    csrf: str

    def post_form(self, path: str, data: dict[str, str] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.client.post(
            path, data={"_csrf_token": self.csrf, **(data or {})}, follow_redirects=False, **kwargs
        )

    def api(self, method: str, path: str, json: object | None = None):  # type: ignore[no-untyped-def]
        return self.client.request(
            method,
            path,
            json=json,
            headers={"x-csrftoken": self.csrf, "accept": "application/json"},
        )


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[Client]:
    with TestClient(app=create_app(settings, sessions=sessions)) as test_client:
        yield test_client


def log_in(client: Client, email: str, password: str = PASSWORD) -> str:
    csrf = hidden(client.get("/login").text, "_csrf_token")
    response = client.post(
        "/login",
        data={"_csrf_token": csrf, "email": email, "password": password},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf


def running_portal(session: Session, role: Role = Role.OWNER) -> tuple[User, Organization, Tenant]:
    user, organization, tenant = make_tenant(session, role=role)
    tenant.state = TenantState.ACTIVE
    tenant.runtime_url = RUNTIME_URL
    session.flush()
    return user, organization, tenant


@pytest.fixture
def console(client: Client, db_session: Session) -> Console:
    user, organization, tenant = running_portal(db_session)
    db_session.commit()
    csrf = log_in(client, user.email)
    return Console(client, user, organization, tenant, csrf)


@pytest.fixture(scope="session")
def dex(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DexServer]:
    try:
        with run_dex(tmp_path_factory.mktemp("dex"), [DEX_CLIENT], [DEX_ADMIN]) as server:
            yield server
    except DexUnavailable as error:
        pytest.fail(f"Dex is needed (make dex-build): {error}", pytrace=False)


@pytest.fixture
def data_dir(settings: Settings) -> Path:
    return settings.resolved_data_dir


def enforce_sso(session: Session, tenant: Tenant) -> SsoConfiguration:
    """A tenant whose (already tested) OIDC configuration is live and enforced."""
    config = SsoConfiguration(
        tenant_id=tenant.id,
        version=3,
        enabled=True,
        enforced=True,
        live={
            "protocol": "oidc",
            "oidc": None,
            "saml": None,
            "role_mapping": [],
            "default_role": "viewer",
        },
    )
    session.add(config)
    session.flush()
    return config
