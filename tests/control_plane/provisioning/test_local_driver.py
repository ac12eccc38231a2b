"""The local driver's verbs against real tenant-runtime processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.base import ConditionUpdate, RuntimeSpec
from control_plane.provisioning.drivers.local import LocalDriver
from control_plane.runtime_link.service import runtime_token
from tests.support.processes import CATALOG_READER_TOKENS, catalog_entities

pytestmark = pytest.mark.embedded

SPEC = RuntimeSpec(
    tenant_id="9d5e2f3a-1b4c-4d6e-8f70-123456789abc",
    slug="initech",
    organization_name="Initech",
    runtime_release="0.1.0",
    size_tier="small",
)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[LocalDriver]:
    local = LocalDriver(Settings(env="test", data_dir=tmp_path, runtime_start_timeout_seconds=20))
    yield local
    local.stop_all()


def test_ensure_reports_each_step_and_serves_the_portal(driver: LocalDriver) -> None:
    steps: list[ConditionUpdate] = []
    observation = driver.ensure(SPEC, steps.append)

    assert [(s.type, s.status, s.reason) for s in steps] == [
        ("DatabaseReady", True, "Migrated"),
        ("WorkloadReady", False, "Starting"),
        ("WorkloadReady", True, "Healthy"),
    ]
    assert observation.ready
    assert observation.url is not None
    portal = httpx.get(f"{observation.url}/")
    assert portal.status_code == 200
    assert "Initech" in portal.text


def test_ensure_twice_adopts_the_running_portal(driver: LocalDriver) -> None:
    first = driver.ensure(SPEC, lambda _: None)
    second = driver.ensure(SPEC, lambda _: None)
    assert second.names["pid"] == first.names["pid"]
    assert second.url == first.url


def test_suspend_stops_the_portal_and_keeps_its_data_and_resume_brings_it_back(
    driver: LocalDriver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKLOT_RUNTIME_SERVICE_TOKENS", CATALOG_READER_TOKENS)
    first = driver.ensure(SPEC, lambda _: None)
    driver.suspend(SPEC)

    stopped = driver.observe(SPEC)
    assert (stopped.workload_ready, stopped.database_ready) == (False, True)
    assert stopped.message == "no runtime process is serving"
    assert httpx.get(f"{first.url}/healthz").status_code == 503, "the suspended page answers"

    resumed = driver.resume(SPEC, lambda _: None)
    assert resumed.ready
    entities = catalog_entities(resumed.url)
    assert len(entities) == 8, "the seeded catalog survives a suspend"


def test_destroy_stops_the_portal_and_purge_removes_its_data(driver: LocalDriver) -> None:
    driver.ensure(SPEC, lambda _: None)
    driver.destroy(SPEC)
    assert driver.observe(SPEC).workload_ready is False
    assert driver.observe(SPEC).database_ready is True
    driver.purge(SPEC)
    assert not driver.tenant_dir(SPEC).exists()
    assert driver.observe(SPEC).database_ready is False


def test_a_local_runtime_gets_its_control_plane_address_and_token(tmp_path: Path) -> None:
    settings = Settings(env="test", data_dir=tmp_path, secret_key=SecretStr("k" * 32), port=8123)
    env = LocalDriver(settings)._env(SPEC_FOR_TOKEN)
    assert (
        env["BACKLOT_RUNTIME_CONTROL_PLANE_URL"],
        env["BACKLOT_RUNTIME_CONTROL_PLANE_TOKEN"],
    ) == (
        "http://127.0.0.1:8123",
        runtime_token(settings, SPEC_FOR_TOKEN.tenant_id),
    )


SPEC_FOR_TOKEN = RuntimeSpec(
    "7d1c8a52-1f4f-4b1e-8a8e-9a3c2b1d0e4f", "acme", "Acme", "0.1.0", "small"
)
