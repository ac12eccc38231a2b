"""A fleet on the real test cluster: tenants provisioned by the real reconciler and driver.

The reconciles run in threads on a committed database of their own, as one worker process's
threads would (the rollback ``sessions`` fixture holds one connection and cannot be shared
across threads). ``drive`` plays the rollout task and the worker: one rollout tick, then every
operation the tick asked for, until the rollout ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core import migrations
from control_plane.core.database import build_engine, build_session_factory, unit_of_work
from control_plane.core.settings import Settings
from control_plane.fleet import rollouts
from control_plane.fleet.models import RolloutState
from control_plane.provisioning.drivers.base import RuntimeSpec, TransientDriverError
from control_plane.provisioning.drivers.kubernetes.driver import KubernetesDriver
from control_plane.provisioning.models import Operation, OperationState
from control_plane.provisioning.reconciler import Reconciler, runtime_spec
from control_plane.tenants.models import Tenant
from infra.testenv import services
from tests.control_plane.factories import make_tenant

ATTEMPTS = 5


@dataclass
class ClusterFleet:
    sessions: sessionmaker[Session]
    driver: KubernetesDriver
    reconciler: Reconciler
    threads: int = 8
    tenant_ids: list[UUID] = field(default_factory=list)

    def provision(self, count: int) -> list[UUID]:
        with unit_of_work(self.sessions) as session:
            made = [make_tenant(session)[2].id for _ in range(count)]
        self.tenant_ids += made
        self.run_pending()
        return made

    def _reconcile(self, operation_id: UUID) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self.reconciler.run(operation_id)
                return
            except TransientDriverError as exc:
                if attempt == ATTEMPTS:
                    self.reconciler.give_up(operation_id, str(exc))
                    return
                self.reconciler.release(operation_id, str(exc))
                time.sleep(attempt)

    def run_pending(self) -> int:
        with unit_of_work(self.sessions) as session:
            pending = list(
                session.scalars(
                    select(Operation.id).where(Operation.state == OperationState.PENDING)
                )
            )
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            list(pool.map(self._reconcile, pending))
        return len(pending)

    def drive(self, rollout_id: UUID, timeout: float = 240.0) -> RolloutState:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with unit_of_work(self.sessions) as session:
                state = rollouts.advance(session, rollout_id)
            if state not in (RolloutState.RUNNING, RolloutState.ROLLING_BACK):
                return state
            if not self.run_pending():
                time.sleep(0.5)
        raise AssertionError(f"rollout {rollout_id} did not end within {timeout:.0f}s")

    def tenants(self) -> list[Tenant]:
        with unit_of_work(self.sessions) as session:
            found = session.scalars(select(Tenant).where(Tenant.id.in_(self.tenant_ids))).all()
            return sorted(found, key=lambda t: self.tenant_ids.index(t.id))

    def deployed_image(self, tenant_id: UUID) -> str:
        with unit_of_work(self.sessions) as session:
            tenant = session.get(Tenant, tenant_id)
            assert tenant is not None
            names = tenant.runtime_names
        found = self.driver._apps.read_namespaced_deployment(
            names["deployment"], names["namespace"]
        )
        return str(found.spec.template.spec.containers[0].image)

    def remove_all(self) -> None:
        with unit_of_work(self.sessions) as session:
            specs = [
                runtime_spec(session, t)
                for t in session.scalars(select(Tenant).where(Tenant.id.in_(self.tenant_ids)))
            ]

        def remove(spec: RuntimeSpec) -> None:
            self.driver.destroy(spec)
            self.driver.purge(spec)

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(remove, specs))


@contextmanager
def cluster_fleet(settings: Settings, postgres_admin_url: str, name: str) -> Iterator[ClusterFleet]:
    """A migrated database whose commits are real, and a driver; everything removed after."""
    url = services.create_database(postgres_admin_url, name)
    migrations.upgrade(url)
    engine = build_engine(url)
    sessions = build_session_factory(engine)
    driver = KubernetesDriver(settings)
    # Discover every kind once before threads share the driver (see test_kubernetes_fleet).
    driver.observe(RuntimeSpec(str(uuid4()), "warm-discovery", "Warm", "0.1.0", "small"))
    fleet = ClusterFleet(sessions, driver, Reconciler(settings, sessions, driver))
    try:
        yield fleet
    finally:
        try:
            fleet.remove_all()
        finally:
            engine.dispose()
            services.drop_database(postgres_admin_url, name)
