"""Plugins go live and away in a running runtime, driven by the real control plane's uplink."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from control_plane.marketplace import service as marketplace
from control_plane.tenants.models import Tenant
from tests.control_plane.marketplace.live import RuntimeProcess, wait_for

pytestmark = [pytest.mark.marketplace, pytest.mark.integration]

LIVE_TIMEOUT = 15


def _install(committed: sessionmaker[Session], tenant: Tenant, key: str) -> None:
    with committed() as session:
        marketplace.install(
            session, tenant, marketplace.get_plugin(session, key), actor="user:test"
        )
        session.commit()


def _uninstall(committed: sessionmaker[Session], tenant: Tenant, key: str) -> None:
    with committed() as session:
        marketplace.uninstall(
            session, tenant, marketplace.get_plugin(session, key), actor="user:test"
        )
        session.commit()


def _answers(runtime: RuntimeProcess, path: str, status: int) -> bool:
    return runtime.get(path).status_code == status


def test_a_free_plugin_installed_goes_live_without_a_restart(
    runtime: RuntimeProcess, committed: sessionmaker[Session], tenant: Tenant
) -> None:
    pid = runtime.process.pid
    assert runtime.get("/api/plugins/cicd/runs?entity=component:default/x").status_code == 404

    _install(committed, tenant, "cicd")

    wait_for(
        lambda: _answers(runtime, "/api/plugins/cicd/runs?entity=component:default/x", 200),
        LIVE_TIMEOUT,
        runtime,
        "the CI/CD plugin answering",
    )
    assert (runtime.process.pid, runtime.process.poll()) == (pid, None)


def test_uninstall_removes_the_plugins_routes_and_pages(
    runtime: RuntimeProcess, committed: sessionmaker[Session], tenant: Tenant
) -> None:
    _install(committed, tenant, "cicd")
    page = "/plugins/cicd/entity/component/default/orders-service"
    wait_for(lambda: _answers(runtime, page, 200), LIVE_TIMEOUT, runtime, "the CI/CD page")

    _uninstall(committed, tenant, "cicd")

    wait_for(lambda: _answers(runtime, page, 404), LIVE_TIMEOUT, runtime, "the page gone")
    assert runtime.get("/api/plugins/cicd/runs?entity=component:default/x").status_code == 404
