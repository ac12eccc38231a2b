"""``reconcile_tenant``: bring one tenant's runtime to one generation of its spec.

Level-triggered and idempotent: every run re-reads the tenant, claims its operation
with a compare-and-set and a lease, and drives the driver towards the spec. A worker
killed at any line leaves a lease that runs out; the periodic resync then hands the
tenant to a fresh operation, and the driver adopts whatever the lost worker started.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from uuid import UUID

import structlog
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.database import unit_of_work
from control_plane.core.settings import Settings
from control_plane.fleet import releases
from control_plane.identity.models import Organization
from control_plane.provisioning.drivers.base import (
    ConditionUpdate,
    DriverError,
    Progress,
    RuntimeDriver,
    RuntimeObservation,
    RuntimeSpec,
)
from control_plane.provisioning.models import Operation, OperationState
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant

log = structlog.get_logger(__name__)

SYSTEM_ACTOR = "system:reconciler"


def runtime_spec(session: Session, tenant: Tenant) -> RuntimeSpec:
    organization = session.get(Organization, tenant.organization_id)
    assert organization is not None
    return RuntimeSpec(
        tenant_id=str(tenant.id),
        slug=tenant.slug,
        organization_name=organization.name,
        runtime_release=tenant.runtime_release,
        size_tier=tenant.size_tier,
        names=dict(tenant.runtime_names),
        image=releases.image_of(session, tenant.runtime_release),
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    detail: str = ""


class Reconciler:
    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], driver: RuntimeDriver
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.driver = driver

    def _lease_until(self) -> dt.datetime:
        return tenants.now() + dt.timedelta(seconds=self.settings.reconcile_lease_seconds)

    def claim(self, operation_id: UUID) -> bool:
        """Compare-and-set: take a pending operation, or one whose worker's lease ran out."""
        with unit_of_work(self.sessions) as session:
            current = tenants.now()
            result = session.execute(
                update(Operation)
                .where(
                    Operation.id == operation_id,
                    or_(
                        Operation.state == OperationState.PENDING,
                        and_(
                            Operation.state == OperationState.RUNNING,
                            Operation.lease_expires_at < current,
                        ),
                    ),
                )
                .values(
                    state=OperationState.RUNNING,
                    attempts=Operation.attempts + 1,
                    lease_expires_at=self._lease_until(),
                    started_at=current,
                )
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    def release(self, operation_id: UUID, error: str) -> None:
        """Hand a claimed operation back so its retry can claim it again."""
        with unit_of_work(self.sessions) as session:
            operation = session.get(Operation, operation_id)
            if operation is not None and operation.state == OperationState.RUNNING:
                operation.state = OperationState.PENDING
                operation.lease_expires_at = None
                operation.error = error[:2000]

    def _held(self, session: Session, operation_id: UUID) -> Operation | None:
        """The operation, locked, if this worker still holds it; None if another took over."""
        operation = session.get(Operation, operation_id, with_for_update=True)
        if operation is None or operation.state != OperationState.RUNNING:
            log.warning("reconcile.lost_operation", operation_id=str(operation_id))
            return None
        return operation

    @contextmanager
    def _heartbeat(self, operation_id: UUID) -> Iterator[None]:
        """Keep the lease while a long driver call runs, so no one takes a live worker's work."""
        stop = threading.Event()
        interval = self.settings.reconcile_lease_seconds / 3

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    with unit_of_work(self.sessions) as session:
                        session.execute(
                            update(Operation)
                            .where(
                                Operation.id == operation_id,
                                Operation.state == OperationState.RUNNING,
                            )
                            .values(lease_expires_at=self._lease_until())
                            .execution_options(synchronize_session=False)
                        )
                except Exception as exc:  # a missed beat is retried at the next interval
                    log.warning("reconcile.heartbeat_failed", error=str(exc))

        thread = threading.Thread(target=beat, name=f"lease-{operation_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def run(self, operation_id: UUID) -> Outcome:
        if not self.claim(operation_id):
            log.info("reconcile.skipped", operation_id=str(operation_id), why="not claimable")
            return Outcome("skipped", "already handled or held by another worker")

        with unit_of_work(self.sessions) as session:
            operation = session.get(Operation, operation_id)
            assert operation is not None
            tenant = tenants.get_tenant(session, operation.tenant_id)
            structlog.contextvars.bind_contextvars(
                tenant_id=str(tenant.id), operation_id=str(operation_id)
            )
            action = self._action(tenant)
            if operation.generation < tenant.generation or action is None:
                operation.state = OperationState.SUPERSEDED
                operation.finished_at = tenants.now()
                return Outcome("superseded", f"generation {operation.generation}: nothing to do")
            spec = runtime_spec(session, tenant)
            if action == "ensure" and tenant.state in (TenantState.PENDING, TenantState.FAILED):
                tenants.transition(
                    session,
                    tenant,
                    TenantState.PROVISIONING,
                    reason="ProvisioningStarted",
                    actor=SYSTEM_ACTOR,
                    operation_id=operation_id,
                )

        log.info("reconcile.start", generation=operation.generation, action=action)
        try:
            with self._heartbeat(operation_id):
                observation = self._act(action, spec, partial(self._progress, operation_id))
        except DriverError as exc:
            if not self._fail(operation_id, exc.reason, exc.message):
                return Outcome("superseded", "another worker took the operation over")
            return Outcome("failed", exc.message)
        if action == "ensure":
            finished, status = self._finish_ready(operation_id, observation), "ready"
        elif action == "suspend":
            finished, status = self._finish_suspended(operation_id), "suspended"
        elif action == "delete":
            finished, status = self._finish_deleted(operation_id), "deleted"
        else:
            finished, status = self._finish_purged(operation_id), "purged"
        if not finished:
            return Outcome("superseded", "another worker took the operation over")
        return Outcome(status, observation.url or "")

    def _act(self, action: str, spec: RuntimeSpec, progress: Progress) -> RuntimeObservation:
        if action == "ensure":
            return self.driver.ensure(spec, progress)
        if action == "suspend":
            self.driver.suspend(spec)
        elif action == "delete":
            progress(ConditionUpdate("Ready", False, "Deleting", "the portal is being removed"))
            self.driver.destroy(spec)
            if self.settings.deletion_retention_seconds == 0:
                self.driver.purge(spec)
        else:
            self.driver.purge(spec)
        return RuntimeObservation()

    @staticmethod
    def _action(tenant: Tenant) -> str | None:
        """What the spec asks of the world now; None when there is nothing to do."""
        if tenant.state == TenantState.DELETED:
            due = tenant.purge_after is not None and tenant.purge_after <= tenants.now()
            return "purge" if due and tenant.purged_at is None else None
        if tenant.deletion_requested_at is not None:
            return "delete"
        return "suspend" if tenant.suspended else "ensure"

    def _progress(self, operation_id: UUID, update_: ConditionUpdate) -> None:
        """Write one step's condition now (the signup page shows it live); extend the lease."""
        with unit_of_work(self.sessions) as session:
            operation = self._held(session, operation_id)
            if operation is None:
                return
            operation.lease_expires_at = self._lease_until()
            tenant = tenants.get_tenant(session, operation.tenant_id)
            tenants.set_condition(
                tenant, update_.type, update_.status, update_.reason, update_.message
            )
            if update_.type != "Ready":
                tenants.set_condition(tenant, "Ready", False, "Provisioning", update_.message)
        log.info(
            "reconcile.progress",
            condition=update_.type,
            status=update_.status,
            reason=update_.reason,
        )

    def _finish_ready(self, operation_id: UUID, observation: RuntimeObservation) -> bool:
        with unit_of_work(self.sessions) as session:
            operation = self._held(session, operation_id)
            if operation is None:
                return False
            tenant = tenants.get_tenant(session, operation.tenant_id)
            tenant.runtime_url = observation.url
            tenant.runtime_names = observation.names
            tenant.failure_reason = None
            tenants.set_condition(tenant, "Degraded", False, "Healthy")
            tenants.set_condition(tenant, "Ready", True, "RuntimeHealthy", "the portal is live")
            if tenant.ready_at is None:
                tenant.ready_at = tenants.now()
            tenant.observed_generation = max(tenant.observed_generation, operation.generation)
            tenants.transition(
                session,
                tenant,
                TenantState.ACTIVE,
                reason="Ready",
                message=observation.url or "",
                actor=SYSTEM_ACTOR,
                operation_id=operation_id,
            )
            operation.state = OperationState.SUCCEEDED
            operation.finished_at = tenants.now()
            operation.error = None
        log.info("reconcile.ready", url=observation.url)
        return True

    def _finish_suspended(self, operation_id: UUID) -> bool:
        with unit_of_work(self.sessions) as session:
            operation = self._held(session, operation_id)
            if operation is None:
                return False
            tenant = tenants.get_tenant(session, operation.tenant_id)
            tenants.set_condition(
                tenant, "WorkloadReady", False, "Suspended", "the portal is stopped; data is kept"
            )
            tenants.set_condition(tenant, "Ready", False, "Suspended", "the portal is suspended")
            tenant.observed_generation = max(tenant.observed_generation, operation.generation)
            tenants.transition(
                session,
                tenant,
                TenantState.SUSPENDED,
                reason="Suspended",
                actor=SYSTEM_ACTOR,
                operation_id=operation_id,
            )
            operation.state = OperationState.SUCCEEDED
            operation.finished_at = tenants.now()
        return True

    def _finish_deleted(self, operation_id: UUID) -> bool:
        with unit_of_work(self.sessions) as session:
            operation = self._held(session, operation_id)
            if operation is None:
                return False
            tenant = tenants.get_tenant(session, operation.tenant_id)
            current = tenants.now()
            retention = dt.timedelta(seconds=self.settings.deletion_retention_seconds)
            tenant.purge_after = current + retention
            if not retention:
                tenant.purged_at = current
            tenant.runtime_url = None
            tenants.set_condition(
                tenant, "WorkloadReady", False, "Deleted", "the portal was removed"
            )
            tenants.set_condition(tenant, "Ready", False, "Deleted", "the portal was deleted")
            tenant.observed_generation = max(tenant.observed_generation, operation.generation)
            tenants.transition(
                session,
                tenant,
                TenantState.DELETED,
                reason="Deleted",
                message=f"data kept until {tenant.purge_after:%Y-%m-%d %H:%M} UTC",
                actor=SYSTEM_ACTOR,
                operation_id=operation_id,
            )
            operation.state = OperationState.SUCCEEDED
            operation.finished_at = current
        return True

    def _finish_purged(self, operation_id: UUID) -> bool:
        with unit_of_work(self.sessions) as session:
            operation = self._held(session, operation_id)
            if operation is None:
                return False
            tenant = tenants.get_tenant(session, operation.tenant_id)
            tenant.purged_at = tenants.now()
            tenants.set_condition(tenant, "DatabaseReady", False, "Purged", "the data was dropped")
            tenants.record_event(
                session,
                tenant,
                from_state=TenantState.DELETED,
                to_state=TenantState.DELETED,
                reason="DataPurged",
                message="the retention period ended",
                actor=SYSTEM_ACTOR,
                operation_id=operation_id,
            )
            operation.state = OperationState.SUCCEEDED
            operation.finished_at = tenant.purged_at
        return True

    def _fail(self, operation_id: UUID, reason: str, message: str) -> bool:
        with unit_of_work(self.sessions) as session:
            operation = self._held(session, operation_id)
            if operation is None:
                return False
            tenant = tenants.get_tenant(session, operation.tenant_id)
            tenants.set_condition(tenant, "Ready", False, reason, message)
            tenants.set_condition(tenant, "Degraded", True, reason, message)
            tenant.failure_reason = f"{reason}: {message}"
            if tenant.state in (TenantState.PROVISIONING, TenantState.DELETING):
                tenants.transition(
                    session,
                    tenant,
                    TenantState.FAILED,
                    reason=reason,
                    message=message,
                    actor=SYSTEM_ACTOR,
                    operation_id=operation_id,
                )
            operation.state = OperationState.FAILED
            operation.finished_at = tenants.now()
            operation.error = f"{reason}: {message}"[:2000]
        log.warning("reconcile.failed", reason=reason, message=message)
        return True

    def give_up(self, operation_id: UUID, error: str) -> None:
        """Retries ran out on errors that looked transient: fail the tenant, retriable."""
        self._fail(operation_id, "RetriesExhausted", error)

    def resync(self) -> list[UUID]:
        """Find tenants whose world does not match their spec and hand each a fresh operation.

        Catches lost messages, workers killed mid-operation and runtimes that died.
        """
        requested: list[UUID] = []
        current = tenants.now()
        with unit_of_work(self.sessions) as session:
            stale = session.scalars(
                select(Operation).where(
                    Operation.state == OperationState.RUNNING, Operation.lease_expires_at < current
                )
            ).all()
            for operation in stale:
                operation.state = OperationState.SUPERSEDED
                operation.error = "the worker's lease ran out (worker lost)"
                operation.finished_at = current
            session.flush()

            purge_due = (
                (Tenant.state == TenantState.DELETED)
                & Tenant.purged_at.is_(None)
                & (Tenant.purge_after <= current)
            )
            candidates = session.scalars(
                select(Tenant).where(
                    Tenant.state.not_in([TenantState.DELETED, TenantState.FAILED]) | purge_due
                )
            ).all()
            for tenant in candidates:
                if tenants.live_operation(session, tenant.id) is not None:
                    continue
                needs_work = tenant.observed_generation < tenant.generation or tenant.state in (
                    TenantState.PENDING,
                    TenantState.PROVISIONING,
                    TenantState.DELETING,
                    TenantState.DELETED,
                )
                if not needs_work and tenant.state == TenantState.ACTIVE and not tenant.suspended:
                    needs_work = not self._runtime_answers(session, tenant)
                if needs_work:
                    tenants.request_reconcile(session, tenant)
                    requested.append(tenant.id)
        if requested:
            log.info("resync.requested", tenants=[str(t) for t in requested])
        return requested

    def _runtime_answers(self, session: Session, tenant: Tenant) -> bool:
        spec = runtime_spec(session, tenant)
        observation = self.driver.observe(spec)
        if observation.drift:
            # Still serving, but not as specified: repaired by a reconcile, no outage to report.
            message = ", ".join(observation.drift)[:500]
            tenants.set_condition(tenant, "Degraded", True, "Drifted", message)
            log.warning("resync.drift", tenant_id=str(tenant.id), drift=observation.drift)
            return False
        if observation.workload_ready:
            return True
        tenants.set_condition(tenant, "Degraded", True, "RuntimeNotAnswering", observation.message)
        tenants.set_condition(tenant, "Ready", False, "RuntimeNotAnswering", observation.message)
        log.warning("resync.not_answering", tenant_id=str(tenant.id), message=observation.message)
        return False
