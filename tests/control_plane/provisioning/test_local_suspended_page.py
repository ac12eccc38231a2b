"""A suspended local portal's port answers with the control plane's suspended page."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.settings import Settings
from control_plane.provisioning.drivers import suspended_page
from control_plane.provisioning.drivers.base import RuntimeSpec
from control_plane.provisioning.drivers.local import LocalDriver
from control_plane.provisioning.reconciler import Reconciler
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from tests.control_plane.factories import make_tenant, pending_operation
from tests.control_plane.marketplace.live import free_port, serve_control_plane

pytestmark = [pytest.mark.stripe, pytest.mark.integration, pytest.mark.embedded]


@dataclass
class Suspendable:
    driver: LocalDriver
    spec: RuntimeSpec
    tenant: Tenant
    organization_name: str
    url: str


@pytest.fixture
def sessions(committed_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions that really commit: the served control plane answers each portal's uplink
    from threads of its own, which one shared connection cannot carry."""
    return committed_sessions


@pytest.fixture
def db_session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def portal(
    settings: Settings, sessions: sessionmaker[Session], db_session: Session, tmp_path: Path
) -> Iterator[Suspendable]:
    """A live local portal, its tenant in the database, and the control plane serving."""
    _, organization, tenant = make_tenant(db_session)
    tenant.state = TenantState.ACTIVE
    db_session.commit()
    with serve_control_plane(settings, sessions) as (_, served):
        driver = LocalDriver(
            served.model_copy(
                update={"data_dir": tmp_path / "runtimes", "runtime_start_timeout_seconds": 30}
            )
        )
        spec = RuntimeSpec(str(tenant.id), tenant.slug, organization.name, "0.1.0", "small")
        observation = driver.ensure(spec, lambda _: None)
        assert observation.url is not None
        try:
            yield Suspendable(driver, spec, tenant, organization.name, observation.url)
        finally:
            driver.stop_all()


def _suspend(db_session: Session, portal: Suspendable, holder: str) -> None:
    tenants.suspend(db_session, portal.tenant, holder=holder, actor="test", reason="unpaid")
    db_session.commit()
    portal.driver.suspend(portal.spec)


def test_the_suspended_portals_address_serves_the_page(
    portal: Suspendable, db_session: Session
) -> None:
    _suspend(db_session, portal, "billing")
    page = httpx.get(f"{portal.url}/catalog/anything")
    assert (
        page.status_code,
        f"{portal.organization_name}'s portal is suspended" in page.text,
        "contact your organization's admin" in page.text,
    ) == (503, True, True)


def test_the_page_follows_the_current_holds(portal: Suspendable, db_session: Session) -> None:
    _suspend(db_session, portal, "billing")
    tenants.suspend(db_session, portal.tenant, holder="operator", actor="test")
    db_session.commit()
    assert "contact support" in httpx.get(portal.url).text


def test_resume_gives_the_address_back_to_the_portal(
    portal: Suspendable, db_session: Session
) -> None:
    _suspend(db_session, portal, "billing")
    resumed = portal.driver.resume(portal.spec, lambda _: None)
    assert (resumed.url, httpx.get(f"{portal.url}/healthz").status_code) == (portal.url, 200)


def test_destroy_also_stops_the_page(portal: Suspendable, db_session: Session) -> None:
    _suspend(db_session, portal, "billing")
    portal.driver.destroy(portal.spec)
    with pytest.raises(httpx.ConnectError):
        httpx.get(portal.url)


def test_without_the_control_plane_the_stand_in_still_says_suspended(tmp_path: Path) -> None:
    port = free_port()
    unreachable = f"http://127.0.0.1:{free_port()}/suspended/acme"
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(suspended_page.__file__)),
            "--port",
            str(port),
            "--page",
            unreachable,
        ]
    )
    try:
        page = _get_when_listening(f"http://127.0.0.1:{port}/")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert (page.status_code, "This portal is suspended" in page.text) == (503, True)


def _get_when_listening(url: str) -> httpx.Response:
    for _ in range(100):
        try:
            return httpx.get(url, timeout=5)
        except httpx.ConnectError:
            time.sleep(0.05)
    pytest.fail(f"nothing listened at {url} within 5 s", pytrace=False)


def test_billing_suspends_a_live_portal_and_payment_brings_it_back_at_the_same_address(
    settings: Settings, sessions: sessionmaker[Session], db_session: Session, tmp_path: Path
) -> None:
    """Through the reconciler, as a billing suspension and its lifting run in production."""
    _, organization, tenant = make_tenant(db_session)
    db_session.commit()
    with serve_control_plane(settings, sessions) as (_, served):
        local = served.model_copy(update={"data_dir": tmp_path / "runtimes"})
        driver = LocalDriver(local)
        reconciler = Reconciler(local, sessions, driver)
        try:
            assert reconciler.run(pending_operation(db_session, tenant.id).id).status == "ready"
            db_session.refresh(tenant)
            address = tenant.runtime_url
            suspend = tenants.suspend(db_session, tenant, holder="billing", actor="system:billing")
            assert suspend is not None
            db_session.commit()
            assert reconciler.run(suspend.id).status == "suspended"
            page = httpx.get(f"{address}/")

            resume = tenants.resume(db_session, tenant, holder="billing", actor="system:billing")
            assert resume is not None
            db_session.commit()
            assert reconciler.run(resume.id).status == "ready"
            db_session.refresh(tenant)
            back = httpx.get(f"{tenant.runtime_url}/healthz")
        finally:
            driver.stop_all()
    assert (
        page.status_code,
        f"{organization.name}'s portal is suspended" in page.text,
        tenant.runtime_url,
        back.status_code,
    ) == (503, True, address, 200)
