"""Twenty signups at once on the real cluster: every one reaches Ready, none collide.

The reconcilers run in threads on a committed database of their own (the rollback
``sessions`` fixture holds one connection and cannot be shared across threads), and share
one :class:`KubernetesDriver`, as one worker process's threads would.

Sharing is safe: the ApiClient's urllib3 pool manager is thread-safe, the driver keeps no
per-call state, and the DynamicClient's discovery is filled before the threads start (see
``_warm``) so no thread rewrites the discovery cache while another searches it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

import pytest
from kubernetes import client as kube
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core import migrations
from control_plane.core.database import build_engine, build_session_factory, unit_of_work
from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.base import RuntimeSpec, TransientDriverError
from control_plane.provisioning.drivers.kubernetes import manifests
from control_plane.provisioning.drivers.kubernetes.driver import KubernetesDriver
from control_plane.provisioning.models import Operation
from control_plane.provisioning.reconciler import Outcome, Reconciler
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from infra.testenv import services
from tests.control_plane.factories import make_tenant

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

TENANTS = 20
WORKERS = 8
# What the Celery task does on a transient error: hand the operation back and try again.
ATTEMPTS = 5


@pytest.fixture
def fleet_sessions(postgres_admin_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated control-plane database whose commits are real (dropped afterwards)."""
    name = f"backlot_fleet_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    url = services.create_database(postgres_admin_url, name)
    migrations.upgrade(url)
    engine = build_engine(url)
    try:
        yield build_session_factory(engine)
    finally:
        engine.dispose()
        services.drop_database(postgres_admin_url, name)


def _warm(driver: KubernetesDriver) -> None:
    """Discover every kind the driver uses once, before threads share the driver.

    Observing a tenant that does not exist looks up (and lists) every kind, writing nothing.
    """
    driver.observe(RuntimeSpec(str(uuid4()), "warm-discovery", "Warm", "0.1.0", "small"))


def _reconcile(reconciler: Reconciler, operation_id: UUID, retries: list[str]) -> Outcome:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return reconciler.run(operation_id)
        except TransientDriverError as exc:
            retries.append(str(exc))
            if attempt == ATTEMPTS:
                reconciler.give_up(operation_id, str(exc))
                return Outcome("failed", f"retries exhausted: {exc}")
            reconciler.release(operation_id, str(exc))
            time.sleep(attempt)
    raise AssertionError("unreachable")


def _spec(tenant: Tenant) -> RuntimeSpec:
    return RuntimeSpec(
        str(tenant.id), tenant.slug, "Fleet", tenant.runtime_release, tenant.size_tier
    )


def test_twenty_tenants_provisioned_at_once_all_reach_ready(
    kube_settings: Settings, fleet_sessions: sessionmaker[Session], api: kube.ApiClient
) -> None:
    driver = KubernetesDriver(kube_settings)
    _warm(driver)
    reconciler = Reconciler(kube_settings, fleet_sessions, driver)
    with unit_of_work(fleet_sessions) as session:
        made = [make_tenant(session)[2] for _ in range(TENANTS)]
        specs = [_spec(tenant) for tenant in made]
        operations = {
            operation.tenant_id: operation.id for operation in session.scalars(select(Operation))
        }
    tenant_ids = [tenant.id for tenant in made]
    retries: list[str] = []

    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            outcomes = list(
                pool.map(lambda tid: _reconcile(reconciler, operations[tid], retries), tenant_ids)
            )

        print(f"\n{TENANTS} tenants, {WORKERS} threads: {len(retries)} transient retries {retries}")
        assert [(o.status, o.detail) for o in outcomes] == [
            ("ready", f"https://{spec.slug}.portals.example") for spec in specs
        ]
        with unit_of_work(fleet_sessions) as session:
            fresh = session.scalars(select(Tenant).where(Tenant.id.in_(tenant_ids))).all()
            assert {t.state for t in fresh} == {TenantState.ACTIVE}
            namespaces = {t.runtime_names["namespace"] for t in fresh}
            databases = {t.runtime_names["database"] for t in fresh}
        assert len(namespaces) == len(databases) == TENANTS
        assert namespaces == {f"t-{spec.slug}" for spec in specs}
        labelled = kube.CoreV1Api(api).list_namespace(label_selector=manifests.TENANT_LABEL)
        live = {
            ns.metadata.labels[manifests.TENANT_LABEL]: ns.metadata.name for ns in labelled.items
        }
        assert {live[str(tid)] for tid in tenant_ids} == namespaces
        assert all(driver.databases.exists(str(tid)) for tid in tenant_ids)
    finally:

        def remove(spec: RuntimeSpec) -> None:
            driver.destroy(spec)
            driver.purge(spec)

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(remove, specs))
