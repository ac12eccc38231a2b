"""The console's "test connection": the runtime logs in with the draft and reports back.

The real control plane is served over loopback (PostgreSQL); its runtime-config sections
and the SSO test result hook are the contract's registries, filled here with the draft under
test and a recorder, as the identity domain fills them in the product.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app as create_control_plane
from control_plane.core.settings import Settings
from control_plane.runtime_link import service
from control_plane.tenants.models import Tenant
from tenant_runtime.app import create_app
from tenant_runtime.auth.models import User
from tenant_runtime.core.database import create_database_engine
from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.migrate import migrate
from tests.control_plane.factories import make_tenant
from tests.support.dex import DexServer
from tests.support.servers import free_port, serving
from tests.tenant_runtime.auth.conftest import CLIENT_SECRET, ControlPlaneKeys, oidc_section
from tests.tenant_runtime.auth.oidc_flow import dex_round_trip

pytestmark = [pytest.mark.sso, pytest.mark.integration]

TEST_ID = "sso-test-0001"


@pytest.fixture
def sessions(committed_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Control-plane sessions that really commit: the served control plane answers the
    portal's uplink polls and reports from several threads at once, which one shared
    connection cannot carry. (Named here because the runtime tests' `sessions` differ.)"""
    return committed_sessions


@pytest.fixture
def tenant(sessions: sessionmaker[Session]) -> Tenant:
    with sessions() as session:
        _, _, tenant = make_tenant(session)
        session.commit()
        return tenant


@pytest.fixture
def draft_client_secret() -> str:
    return CLIENT_SECRET


@pytest.fixture
def reported(
    monkeypatch: pytest.MonkeyPatch,
    control_plane: ControlPlaneKeys,
    dex: DexServer,
    draft_client_secret: str,
) -> list[dict[str, Any]]:
    """What the console hears; the draft it serves is an OIDC setup against Dex."""
    results: list[dict[str, Any]] = []
    draft = oidc_section(dex, version=2)
    draft["oidc"]["client_secret"] = draft_client_secret
    for live_only in ("scim_token_sha256", "draft"):
        draft.pop(live_only)
    sections = {
        "sso": lambda session, tenant: {
            **oidc_section(dex, enabled=False),
            "draft": draft,
        },
        # The console's signing keys: the test's own, published as a static JWKS.
        "issuer": lambda session, tenant: control_plane.issuer,
        "jwks_uri": lambda session, tenant: control_plane.jwks_uri,
    }
    monkeypatch.setattr(service, "CONFIG_SECTIONS", sections)
    monkeypatch.setattr(
        service,
        "SSO_TEST_RESULT_HANDLER",
        lambda session, tenant, test_id, result: results.append({"test_id": test_id, **result}),
    )
    return results


@pytest.fixture
def control_plane_url(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[str]:
    app = create_control_plane(settings, sessions=sessions)
    with serving(app, free_port(), what="the control plane") as url:
        yield url


@pytest.fixture
def linked_portal(
    tmp_path: Path,
    portal_port: int,
    settings: Settings,
    tenant: Tenant,
    control_plane_url: str,
    reported: list[dict[str, Any]],
) -> Iterator[TestClient[Litestar]]:
    runtime = RuntimeSettings(
        tenant_id=str(tenant.id),
        tenant_slug=tenant.slug,
        organization_name="Acme Rockets",
        database_url=f"sqlite:///{tmp_path / 'linked' / 'runtime.db'}",
        data_dir=tmp_path / "linked",
        public_url=f"http://127.0.0.1:{portal_port}",
        control_plane_url=control_plane_url,
        control_plane_token=SecretStr(service.runtime_token(settings, tenant.id)),
        # One poll at start: the control plane's test sessions share one connection, so the
        # poller must not run beside a request.
        config_refresh_seconds=3600,
    )
    migrate(runtime)
    app = create_app(runtime)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        deadline = time.monotonic() + 20
        while app.state.sso_state.control_plane_issuer is None:
            assert time.monotonic() < deadline, "the runtime never read its config document"
            time.sleep(0.05)
        yield client


def _run_test_connection(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys, tenant: Tenant
) -> Any:
    ticket = control_plane.ticket(aud=f"backlot-runtime:{tenant.id}", sso_test=TEST_ID)
    start = portal.get("/auth/sso/test", params={"ticket": ticket}, follow_redirects=False)
    assert start.status_code == 302, start.text
    portal_url = str(portal.app.state.settings.portal_url)
    callback = dex_round_trip(
        portal, portal_url, email="admin@example.com", groups=["portal-admins"], start=start
    )
    return portal.get(callback, follow_redirects=False)


def test_a_successful_test_is_reported_to_the_console(
    linked_portal: TestClient[Litestar],
    control_plane: ControlPlaneKeys,
    tenant: Tenant,
    reported: list[dict[str, Any]],
) -> None:
    _run_test_connection(linked_portal, control_plane, tenant)
    assert [(r["test_id"], r["ok"], r["email"], r["role"]) for r in reported] == [
        (TEST_ID, True, "admin@example.com", "admin")
    ]


def test_the_admin_returns_to_the_console(
    linked_portal: TestClient[Litestar], control_plane: ControlPlaneKeys, tenant: Tenant
) -> None:
    response = _run_test_connection(linked_portal, control_plane, tenant)
    location = urlsplit(response.headers["location"])
    assert (location.path, location.query) == ("/console/sso", f"test={TEST_ID}")


def test_a_test_signs_nobody_in(
    linked_portal: TestClient[Litestar], control_plane: ControlPlaneKeys, tenant: Tenant
) -> None:
    _run_test_connection(linked_portal, control_plane, tenant)
    engine = create_database_engine(str(linked_portal.app.state.settings.database_url))
    with Session(engine) as session:
        users = session.scalar(select(func.count()).select_from(User))
    engine.dispose()
    assert (users, linked_portal.get("/auth/me").status_code) == (0, 401)


@pytest.mark.parametrize("draft_client_secret", ["not-the-secret"])
def test_a_failing_draft_is_reported_with_its_reason(
    linked_portal: TestClient[Litestar],
    control_plane: ControlPlaneKeys,
    tenant: Tenant,
    reported: list[dict[str, Any]],
) -> None:
    _run_test_connection(linked_portal, control_plane, tenant)
    assert [(r["ok"], r["error"]) for r in reported] == [
        (False, "Your identity provider refused to complete the sign-in; try again.")
    ]
