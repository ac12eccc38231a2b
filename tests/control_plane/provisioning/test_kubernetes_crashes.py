"""A worker killed at any step of provisioning or deletion: the next one converges.

The kill is simulated inside the process by a BaseException raised from the driver at a
chosen step: nothing in the reconciler catches it, the operation keeps its lease exactly as
a dead worker's would, and the resync hands the tenant to a fresh operation once the
lease runs out. The cluster, the database and the state left behind are all real.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from kubernetes import client as kube
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.base import RuntimeSpec
from control_plane.provisioning.drivers.kubernetes.driver import KubernetesDriver
from control_plane.provisioning.drivers.kubernetes.manifests import Manifest, TenantNames
from control_plane.provisioning.models import Operation, OperationState
from control_plane.provisioning.reconciler import Reconciler
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from tests.control_plane.factories import make_tenant, pending_operation

pytestmark = [pytest.mark.k8s, pytest.mark.integration]


class WorkerKilled(BaseException):
    """Stands for SIGKILL: not an Exception, so no handler in the product swallows it."""


class DyingDriver(KubernetesDriver):
    """Dies when it is about to take step number ``die_at`` (counting every API write)."""

    die_at: int | None = None
    steps = 0

    def _step(self) -> None:
        if self.die_at is not None and self.steps == self.die_at:
            raise WorkerKilled(f"killed before step {self.steps}")
        self.steps += 1

    def _apply(self, manifest: Manifest) -> None:
        self._step()
        super()._apply(manifest)

    def _namespace_exists(self, names: TenantNames) -> bool:
        self._step()
        return super()._namespace_exists(names)

    def _deployment_status(self, names: TenantNames) -> tuple[int, int, bool]:
        self._step()
        return super()._deployment_status(names)


@pytest.fixture
def cleanup(kube_settings: Settings) -> Iterator[list[RuntimeSpec]]:
    specs: list[RuntimeSpec] = []
    yield specs
    driver = KubernetesDriver(kube_settings)
    for spec in specs:
        driver.destroy(spec)
        driver.purge(spec)


def _spec(tenant: Tenant) -> RuntimeSpec:
    return RuntimeSpec(
        str(tenant.id), tenant.slug, "Initech", tenant.runtime_release, tenant.size_tier
    )


def _lose_the_worker(db_session: Session, tenant: Tenant) -> None:
    """What time does to a dead worker's operation: its lease runs out."""
    db_session.execute(
        update(Operation)
        .where(Operation.tenant_id == tenant.id, Operation.state == OperationState.RUNNING)
        .values(lease_expires_at=tenants.now() - dt.timedelta(seconds=1))
    )
    db_session.commit()


def _converge(reconciler: Reconciler, db_session: Session, tenant: Tenant) -> str:
    _lose_the_worker(db_session, tenant)
    assert reconciler.resync() == [tenant.id]
    fresh = pending_operation(db_session, tenant.id)
    return reconciler.run(fresh.id).status


def _namespaces(api: kube.ApiClient, tenant: Tenant) -> list[str]:
    found = kube.CoreV1Api(api).list_namespace(label_selector=f"backlot.dev/tenant-id={tenant.id}")
    return [n.metadata.name for n in found.items if n.status.phase != "Terminating"]


# Every step of a provisioning: the 14 applies (namespace ... disruption budget), then
# the wait for the Deployment (step 14). Step 0 comes after the tenant database exists.
@pytest.mark.parametrize("die_at", range(15))
def test_provisioning_converges_whichever_step_the_worker_died_at(
    die_at: int,
    kube_settings: Settings,
    sessions: sessionmaker[Session],
    db_session: Session,
    api: kube.ApiClient,
    cleanup: list[RuntimeSpec],
) -> None:
    _, _, tenant = make_tenant(db_session)
    cleanup.append(_spec(tenant))
    operation = db_session.scalars(select(Operation).where(Operation.tenant_id == tenant.id)).one()
    db_session.commit()
    dying = DyingDriver(kube_settings)
    dying.die_at = die_at

    with pytest.raises(WorkerKilled):
        Reconciler(kube_settings, sessions, dying).run(operation.id)

    status = _converge(
        Reconciler(kube_settings, sessions, KubernetesDriver(kube_settings)), db_session, tenant
    )
    assert status == "ready"
    db_session.refresh(tenant)
    assert tenant.state == TenantState.ACTIVE
    assert _namespaces(api, tenant) == [f"t-{tenant.slug}"], "one namespace, no orphan"
    deployments = kube.AppsV1Api(api).list_namespaced_deployment(f"t-{tenant.slug}")
    assert [d.metadata.name for d in deployments.items] == ["portal"], "no duplicate workload"


# The steps of a deletion: scale down (1 apply), then namespace checks while it goes.
@pytest.mark.parametrize("die_at", [0, 1, 2, 3])
def test_deletion_converges_whichever_step_the_worker_died_at(
    die_at: int,
    kube_settings: Settings,
    sessions: sessionmaker[Session],
    db_session: Session,
    api: kube.ApiClient,
    cleanup: list[RuntimeSpec],
) -> None:
    _, _, tenant = make_tenant(db_session)
    cleanup.append(_spec(tenant))
    operation = db_session.scalars(select(Operation).where(Operation.tenant_id == tenant.id)).one()
    db_session.commit()
    healthy = KubernetesDriver(kube_settings)
    assert Reconciler(kube_settings, sessions, healthy).run(operation.id).status == "ready"
    db_session.refresh(tenant)
    deletion = tenants.request_deletion(db_session, tenant, actor="operator:ops")
    db_session.commit()
    dying = DyingDriver(kube_settings)
    dying.die_at = die_at

    with pytest.raises(WorkerKilled):
        Reconciler(kube_settings, sessions, dying).run(deletion.id)

    assert _converge(Reconciler(kube_settings, sessions, healthy), db_session, tenant) == "deleted"
    db_session.refresh(tenant)
    assert tenant.state == TenantState.DELETED
    assert _namespaces(api, tenant) == [], "no namespace left behind"
    assert healthy.databases.exists(str(tenant.id)), "the data is kept for the retention period"
