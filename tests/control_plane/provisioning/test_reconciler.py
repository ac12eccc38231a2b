"""The reconciler with the local driver: real runtime processes, the control plane on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.local import LocalDriver
from control_plane.provisioning.models import Operation, OperationState
from control_plane.provisioning.reconciler import Reconciler
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant, TenantEvent
from tests.control_plane.factories import make_tenant, pending_operation
from tests.support.processes import CATALOG_READER_TOKENS, catalog_entities, tenant_runtime_pids

pytestmark = pytest.mark.integration


@pytest.fixture
def driver(settings: Settings) -> Iterator[LocalDriver]:
    local = LocalDriver(settings)
    yield local
    local.stop_all()


@pytest.fixture
def reconciler(
    settings: Settings, sessions: sessionmaker[Session], driver: LocalDriver
) -> Reconciler:
    return Reconciler(settings, sessions, driver)


def _pending(db_session: Session) -> tuple[Tenant, Operation]:
    _, _, tenant = make_tenant(db_session)
    operation = db_session.scalars(select(Operation).where(Operation.tenant_id == tenant.id)).one()
    db_session.commit()
    return tenant, operation


def _reload(db_session: Session, tenant: Tenant) -> Tenant:
    db_session.expire_all()
    fresh = db_session.get(Tenant, tenant.id)
    assert fresh is not None
    return fresh


def test_a_pending_tenant_is_brought_to_a_live_portal(
    reconciler: Reconciler,
    db_session: Session,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKLOT_RUNTIME_SERVICE_TOKENS", CATALOG_READER_TOKENS)
    tenant, operation = _pending(db_session)

    outcome = reconciler.run(operation.id)

    assert outcome.status == "ready"
    tenant = _reload(db_session, tenant)
    assert (tenant.state, tenant.observed_generation) == (TenantState.ACTIVE, 1)
    statuses = {c["type"]: c["status"] for c in tenant.conditions}
    assert statuses == {
        "DatabaseReady": "True",
        "WorkloadReady": "True",
        "Ready": "True",
        "Degraded": "False",
    }
    assert tenant.runtime_url is not None
    assert httpx.get(f"{tenant.runtime_url}/healthz").json()["tenant_id"] == str(tenant.id)
    events = db_session.scalars(
        select(TenantEvent)
        .where(TenantEvent.tenant_id == tenant.id)
        .order_by(TenantEvent.created_at)
    ).all()
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, TenantState.PENDING),
        (TenantState.PENDING, TenantState.PROVISIONING),
        (TenantState.PROVISIONING, TenantState.ACTIVE),
    ]
    db_session.refresh(operation)
    assert (operation.state, operation.attempts) == (OperationState.SUCCEEDED, 1)
    assert tenant_runtime_pids(str(tenant.id)) == [tenant.runtime_names["pid"]]


def test_an_operation_runs_once(reconciler: Reconciler, db_session: Session) -> None:
    _, operation = _pending(db_session)
    assert reconciler.run(operation.id).status == "ready"
    assert reconciler.run(operation.id).status == "skipped"


def test_a_claim_is_refused_while_another_worker_holds_the_lease(
    reconciler: Reconciler, db_session: Session
) -> None:
    _, operation = _pending(db_session)
    assert reconciler.claim(operation.id) is True
    assert reconciler.claim(operation.id) is False
    operation = db_session.get(Operation, operation.id)  # type: ignore[assignment]
    db_session.refresh(operation)
    operation.lease_expires_at = tenants.now() - dt.timedelta(seconds=1)
    db_session.commit()
    assert reconciler.claim(operation.id) is True


def test_an_operation_for_an_older_generation_is_superseded(
    reconciler: Reconciler, db_session: Session
) -> None:
    tenant, operation = _pending(db_session)
    tenant.generation = 2
    db_session.commit()
    assert reconciler.run(operation.id).status == "superseded"
    db_session.refresh(operation)
    assert operation.state == OperationState.SUPERSEDED


def test_a_runtime_that_never_gets_healthy_fails_the_tenant_and_a_retry_recovers(
    settings: Settings, sessions: sessionmaker[Session], db_session: Session, driver: LocalDriver
) -> None:
    slow = settings.model_copy(
        update={"runtime_startup_delay_seconds": 6.0, "runtime_start_timeout_seconds": 1.5}
    )
    tenant, operation = _pending(db_session)

    outcome = Reconciler(slow, sessions, LocalDriver(slow)).run(operation.id)

    assert outcome.status == "failed"
    tenant = _reload(db_session, tenant)
    assert tenant.state == TenantState.FAILED
    assert tenant.failure_reason is not None
    assert tenant.failure_reason.startswith(
        "RuntimeUnhealthy: the portal did not answer its health check within 2s"
    )
    assert tenant_runtime_pids(str(tenant.id)) == [], "a failed start leaves no process"

    retry = tenants.retry(db_session, tenant, actor="user:owner@example.com")
    db_session.commit()
    assert Reconciler(settings, sessions, driver).run(retry.id).status == "ready"
    tenant = _reload(db_session, tenant)
    assert (tenant.state, tenant.observed_generation, tenant.failure_reason) == (
        TenantState.ACTIVE,
        2,
        None,
    )


def test_a_runtime_that_cannot_migrate_fails_with_the_reason(
    settings: Settings, sessions: sessionmaker[Session], db_session: Session, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\necho 'database is locked by maintenance' >&2\nexit 1\n")
    broken.chmod(0o755)
    bad = settings.model_copy(update={"local_runtime_python": str(broken)})
    tenant, operation = _pending(db_session)

    assert Reconciler(bad, sessions, LocalDriver(bad)).run(operation.id).status == "failed"

    tenant = _reload(db_session, tenant)
    assert tenant.state == TenantState.FAILED
    assert tenant.failure_reason == "DatabaseMigrationFailed: database is locked by maintenance"
    ready = tenant.condition("Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "DatabaseMigrationFailed")


def test_the_resync_restarts_a_runtime_that_died(
    reconciler: Reconciler, db_session: Session, settings: Settings
) -> None:
    tenant, operation = _pending(db_session)
    reconciler.run(operation.id)
    tenant = _reload(db_session, tenant)
    record = json.loads((settings.runtimes_dir / str(tenant.id) / "runtime.json").read_text())
    os.kill(record["pid"], signal.SIGKILL)
    os.waitpid(record["pid"], 0)

    assert reconciler.resync() == [tenant.id]
    tenant = _reload(db_session, tenant)
    degraded = tenant.condition("Degraded")
    assert degraded is not None
    assert (degraded["status"], degraded["reason"]) == ("True", "RuntimeNotAnswering")

    repair = pending_operation(db_session, tenant.id)
    assert reconciler.run(repair.id).status == "ready"
    tenant = _reload(db_session, tenant)
    assert httpx.get(f"{tenant.runtime_url}/healthz").status_code == 200
    assert len(tenant_runtime_pids(str(tenant.id))) == 1
    assert reconciler.resync() == [], "a healthy fleet needs nothing"


def test_the_resync_hands_on_work_whose_worker_was_lost(
    reconciler: Reconciler, db_session: Session
) -> None:
    tenant, operation = _pending(db_session)
    assert reconciler.claim(operation.id)
    db_session.refresh(operation)
    operation.lease_expires_at = tenants.now() - dt.timedelta(seconds=1)
    db_session.commit()

    assert reconciler.resync() == [tenant.id]

    db_session.refresh(operation)
    assert operation.state == OperationState.SUPERSEDED
    assert operation.error == "the worker's lease ran out (worker lost)"
    assert reconciler.run(operation.id).status == "skipped", (
        "a late redelivery of the lost message does nothing"
    )


def test_suspending_and_resuming_a_tenant(
    reconciler: Reconciler,
    db_session: Session,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKLOT_RUNTIME_SERVICE_TOKENS", CATALOG_READER_TOKENS)
    tenant, operation = _pending(db_session)
    reconciler.run(operation.id)

    tenant = _reload(db_session, tenant)
    tenant.suspended = True
    tenant.generation += 1
    suspend = tenants.request_reconcile(db_session, tenant)
    db_session.commit()
    assert reconciler.run(suspend.id).status == "suspended"
    tenant = _reload(db_session, tenant)
    assert (tenant.state, tenant.observed_generation) == (TenantState.SUSPENDED, 2)
    assert tenant_runtime_pids(str(tenant.id)) == []

    tenant.suspended = False
    tenant.generation += 1
    resume = tenants.request_reconcile(db_session, tenant)
    db_session.commit()
    assert reconciler.run(resume.id).status == "ready"
    tenant = _reload(db_session, tenant)
    assert (tenant.state, tenant.observed_generation) == (TenantState.ACTIVE, 3)
    entities = catalog_entities(tenant.runtime_url)
    assert len(entities) == 8, "the portal's data survived the suspension"


def test_a_long_start_keeps_its_lease_so_the_resync_does_not_take_it_over(
    settings: Settings, committed_sessions: sessionmaker[Session], driver: LocalDriver
) -> None:
    # A start twice as long as the lease. The lease is not shorter: its heartbeat (every
    # third of it) must not miss a beat on a busy two-core machine for reasons of its own.
    slow = settings.model_copy(
        update={"runtime_startup_delay_seconds": 6.0, "reconcile_lease_seconds": 3.0}
    )
    reconciler = Reconciler(slow, committed_sessions, LocalDriver(slow))
    with committed_sessions() as db_session:
        tenant, operation = _pending(db_session)
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(reconciler.run(operation.id).status))
    worker.start()
    taken_over: list[object] = []
    while worker.is_alive():
        taken_over.extend(reconciler.resync())
        time.sleep(0.3)
    worker.join()

    assert outcome == ["ready"]
    assert taken_over == [], "the resync took a live worker's operation"
    with committed_sessions() as db_session:
        states = db_session.scalars(
            select(Operation.state).where(Operation.tenant_id == tenant.id)
        ).all()
    assert states == [OperationState.SUCCEEDED]


def test_deleting_a_tenant_removes_its_runtime_keeps_its_data_then_purges_it(
    reconciler: Reconciler, db_session: Session, settings: Settings
) -> None:
    tenant, operation = _pending(db_session)
    reconciler.run(operation.id)
    tenant = _reload(db_session, tenant)
    deletion = tenants.request_deletion(db_session, tenant, actor="user:owner@example.com")
    db_session.commit()

    assert reconciler.run(deletion.id).status == "deleted"

    tenant = _reload(db_session, tenant)
    assert (tenant.state, tenant.runtime_url, tenant.purged_at) == (TenantState.DELETED, None, None)
    assert tenant.purge_after is not None
    assert tenant.purge_after - tenants.now() > dt.timedelta(days=29)
    assert tenant_runtime_pids(str(tenant.id)) == []
    data = settings.runtimes_dir / str(tenant.id) / "runtime.db"
    assert data.exists(), "the data is kept for the retention period"
    assert reconciler.resync() == [], "nothing is due before the retention period ends"

    tenant.purge_after = tenants.now() - dt.timedelta(seconds=1)
    db_session.commit()
    assert reconciler.resync() == [tenant.id]
    purge = pending_operation(db_session, tenant.id)
    assert reconciler.run(purge.id).status == "purged"
    tenant = _reload(db_session, tenant)
    assert tenant.purged_at is not None
    assert not data.exists()
    reasons = db_session.scalars(
        select(TenantEvent.reason)
        .where(TenantEvent.tenant_id == tenant.id)
        .order_by(TenantEvent.created_at)
    ).all()
    assert reasons[-3:] == ["DeletionRequested", "Deleted", "DataPurged"]
    assert reconciler.resync() == [], "a purged tombstone needs nothing more"


def test_a_failed_deletion_is_retried_as_a_deletion(
    reconciler: Reconciler, db_session: Session
) -> None:
    tenant, _ = _pending(db_session)
    tenants.request_deletion(db_session, tenant, actor="operator:ops")
    tenant.state = TenantState.FAILED
    db_session.commit()

    retried = tenants.retry(db_session, tenant, actor="operator:ops")
    db_session.commit()

    assert _reload(db_session, tenant).state == TenantState.DELETING
    assert reconciler.run(retried.id).status == "deleted"
