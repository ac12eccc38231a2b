"""Plugins go live and away in a running runtime, driven by the real control plane's uplink."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.settings import Settings
from control_plane.marketplace import service as marketplace
from control_plane.marketplace.entitlements import install_secret
from control_plane.tenants.models import Tenant
from tenant_runtime.plugins.builtin.cicd import sign
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


def test_a_plugins_pages_and_apis_need_a_portal_credential(
    runtime: RuntimeProcess, committed: sessionmaker[Session], tenant: Tenant
) -> None:
    _install(committed, tenant, "cicd")
    api = "/api/plugins/cicd/runs?entity=component:default/orders-service"
    wait_for(lambda: _answers(runtime, api, 200), LIVE_TIMEOUT, runtime, "the CI/CD API")

    anonymous = [
        httpx.get(runtime.url + path, timeout=5).status_code
        for path in (api, "/plugins/cicd/entity/component/default/orders-service", "/api/plugins/")
    ]

    assert anonymous == [401, 401, 401]


def test_the_ci_webhook_is_reached_with_its_signature_alone(
    runtime: RuntimeProcess,
    committed: sessionmaker[Session],
    tenant: Tenant,
    settings: Settings,
) -> None:
    _install(committed, tenant, "cicd")
    api = "/api/plugins/cicd/runs?entity=component:default/orders-service"
    wait_for(lambda: _answers(runtime, api, 200), LIVE_TIMEOUT, runtime, "the CI/CD API")
    with committed() as session:
        plugin, row = next(i for i in marketplace.installed(session, tenant) if i[0].key == "cicd")
        secret = install_secret(settings, tenant, plugin, row, "webhook_secret")
    body = (
        b'{"entity_ref":"component:default/orders-service","pipeline":"build",'
        b'"run_id":"7","status":"succeeded"}'
    )

    delivered = httpx.post(
        runtime.url + "/api/plugins/cicd/webhook",
        content=body,
        headers={"x-backlot-signature": sign(secret, body), "content-type": "application/json"},
        timeout=5,
    )

    assert (delivered.status_code, [r["run_id"] for r in runtime.get(api).json()]) == (202, ["7"])


def test_the_entity_page_shows_the_tabs_and_cards_of_active_plugins(
    runtime: RuntimeProcess, committed: sessionmaker[Session], tenant: Tenant
) -> None:
    entity_page = "/catalog/component/default/orders-service"
    before = runtime.get(entity_page).text
    _install(committed, tenant, "cicd")

    wait_for(
        lambda: 'data-plugin="cicd"' in runtime.get(entity_page).text,
        LIVE_TIMEOUT,
        runtime,
        "the CI/CD tab on the entity page",
    )

    after = runtime.get(entity_page).text
    assert (
        'data-plugin="cicd"' in before,
        'href="/plugins/cicd/entity/component/default/orders-service"' in after,
        "No runs reported yet." in after,
    ) == (False, True, True)
