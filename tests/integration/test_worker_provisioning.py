"""Provisioning end to end: the web app records a signup, a real Celery worker reconciles it
into a real tenant-runtime process, and losing a worker or a runtime is repaired."""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.worker]

# The tenant runtime's example catalog, written out by hand so the test can fail.
SEED_REFS = sorted(
    [
        "group:default/platform-team",
        "system:default/storefront",
        "component:default/storefront-web",
        "component:default/orders-service",
        "api:default/orders-api",
        "resource:default/orders-db",
        "user:default/ada.lovelace",
        "user:default/grace.hopper",
    ]
)


def _slug() -> str:
    return f"acme-{uuid.uuid4().hex[:8]}"


def _condition(tenant: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in tenant["conditions"] if c["type"] == kind), None)


def _healthz(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/healthz", timeout=2.0).status_code
    except httpx.HTTPError:
        return None


def test_signup_is_provisioned_by_a_real_worker(backlot_factory: Callable[..., Any]) -> None:
    backlot = backlot_factory()
    backlot.start_worker()

    created = backlot.sign_up(_slug())
    tenant = backlot.wait_until_active()

    assert tenant["id"] == created["id"]
    assert _healthz(tenant["url"]) == 200, backlot.diagnostics()
    portal = httpx.get(f"{tenant['url']}/", timeout=5.0)
    assert portal.status_code == 200, portal.text
    assert sorted(re.findall(r'data-entity-ref="([^"]+)"', portal.text)) == SEED_REFS
    assert [(e["from_state"], e["to_state"]) for e in backlot.events()] == [
        (None, "pending"),
        ("pending", "provisioning"),
        ("provisioning", "active"),
    ]
    sent = backlot.rows(
        "SELECT m.sent_at FROM outbox_messages m JOIN operations o "
        "ON m.payload->>'operation_id' = o.id::text "
        "WHERE o.tenant_id = CAST(:tenant AS uuid) ORDER BY m.created_at LIMIT 1",
        tenant=tenant["id"],
    )
    assert len(sent) == 1, "the signup wrote no outbox message for its operation"
    assert sent[0].sent_at is not None


def test_killing_the_worker_mid_provisioning_still_ends_ready_with_one_runtime(
    backlot_factory: Callable[..., Any], find_runtime_processes: Callable[[str], list[int]]
) -> None:
    backlot = backlot_factory(runtime_startup_delay_seconds=4.0)
    first = backlot.start_worker()
    tenant_id = backlot.sign_up(_slug())["id"]

    def starting() -> dict[str, Any] | None:
        workload = _condition(backlot.tenant(), "WorkloadReady")
        return workload if workload is not None and workload["reason"] == "Starting" else None

    backlot.wait_for(starting, "WorkloadReady=Starting", timeout=60.0, every=0.1)
    first.kill()
    launched = backlot.runtime_record(tenant_id, "launch.json")

    assert backlot.tenant()["state"] == "provisioning", backlot.diagnostics()
    assert launched is not None, f"the lost worker left no launch record\n{backlot.diagnostics()}"

    backlot.start_worker()
    backlot.wait_until_active(timeout=90.0)

    record = backlot.runtime_record(tenant_id)
    assert record is not None, f"no runtime.json for the active tenant\n{backlot.diagnostics()}"
    assert find_runtime_processes(tenant_id) == [record["pid"]], backlot.diagnostics()
    # The new worker adopted the runtime the lost one started rather than starting another.
    assert record["pid"] == launched["pid"], backlot.diagnostics()
    states = Counter(
        row.state
        for row in backlot.rows(
            "SELECT state FROM operations WHERE tenant_id = CAST(:tenant AS uuid)",
            tenant=tenant_id,
        )
    )
    assert states["superseded"] >= 1, f"operations: {dict(states)}\n{backlot.diagnostics()}"
    assert states["succeeded"] >= 1, f"operations: {dict(states)}\n{backlot.diagnostics()}"


def test_a_runtime_killed_after_ready_is_brought_back_by_the_resync(
    backlot_factory: Callable[..., Any], find_runtime_processes: Callable[[str], list[int]]
) -> None:
    backlot = backlot_factory()
    backlot.start_worker()
    tenant_id = backlot.sign_up(_slug())["id"]
    backlot.wait_until_active()
    killed = backlot.runtime_record(tenant_id)
    assert killed is not None, backlot.diagnostics()

    os.kill(killed["pid"], signal.SIGKILL)

    def serving_again() -> tuple[dict[str, Any], dict[str, Any]] | None:
        tenant = backlot.tenant()
        record = backlot.runtime_record(tenant_id)
        if record is None or record["pid"] == killed["pid"] or tenant["url"] is None:
            return None
        if tenant["state"] != "active" or _healthz(tenant["url"]) != 200:
            return None
        return tenant, record

    tenant, record = backlot.wait_for(serving_again, "the portal to answer again", timeout=60.0)

    assert tenant["url"] == f"http://{record['host']}:{record['port']}"
    assert find_runtime_processes(tenant_id) == [record["pid"]], backlot.diagnostics()


def test_signup_while_the_broker_is_down_creates_nothing(
    backlot_factory: Callable[..., Any],
) -> None:
    backlot = backlot_factory(app_broker_url="redis://127.0.0.1:1/0")
    slug = _slug()

    response = backlot.submit_signup(slug)

    assert response.status_code == 503, response.text[:2000]
    assert "nothing was created" in response.text
    counts = backlot.rows(
        "SELECT (SELECT count(*) FROM organizations WHERE slug = :slug) AS organizations,"
        " (SELECT count(*) FROM users WHERE email = :email) AS users,"
        " (SELECT count(*) FROM tenants WHERE slug = :slug) AS tenants,"
        " (SELECT count(*) FROM outbox_messages) AS outbox",
        slug=slug,
        email=f"owner.{slug}@example.com",
    )
    assert counts[0]._asdict() == {"organizations": 0, "users": 0, "tenants": 0, "outbox": 0}
