"""Provisioning on the real test cluster: signup to Ready, and what a quiet resync costs.

Prints figures; asserts only that the work being timed succeeded (timings vary by machine).
The cluster's nodes are kwok's: pods turn Ready without pulling an image or starting a
container, so "waiting for the cluster" here is the control loop's latency (controllers,
scheduler, kwok), not a real container start.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest
from kubernetes import client as kube
from kubernetes import config as kube_config
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core import migrations
from control_plane.core.database import build_engine, build_session_factory, unit_of_work
from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.base import RuntimeSpec
from control_plane.provisioning.drivers.kubernetes.driver import KubernetesDriver
from control_plane.provisioning.drivers.kubernetes.manifests import Manifest, TenantNames
from control_plane.provisioning.models import Operation
from control_plane.provisioning.reconciler import Reconciler
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from infra.testenv import services
from tests.control_plane.factories import make_tenant

pytestmark = [pytest.mark.bench, pytest.mark.k8s]

SEQUENTIAL_TENANTS = 10
FLEET_TARGET = int(os.environ.get("BACKLOT_BENCH_FLEET", "200"))
FLEET_BUDGET_SECONDS = 240.0
FLEET_THREADS = 8
CLEANUP_THREADS = 16
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")


class TimedDriver(KubernetesDriver):
    """The real driver, with a stopwatch on each phase of ``ensure`` (sequential use only)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.waiting = self.applying = self.tenant_database = 0.0
        ensure_database = self.databases.ensure

        def timed_ensure(tenant_id: str, password: str | None = None) -> Any:
            started = time.perf_counter()
            try:
                return ensure_database(tenant_id, password=password)
            finally:
                self.tenant_database += time.perf_counter() - started

        self.databases.ensure = timed_ensure  # type: ignore[method-assign]

    def _wait_available(self, spec: RuntimeSpec, names: TenantNames) -> None:
        started = time.perf_counter()
        try:
            super()._wait_available(spec, names)
        finally:
            self.waiting += time.perf_counter() - started

    def _apply(self, manifest: Manifest) -> None:
        started = time.perf_counter()
        try:
            super()._apply(manifest)
        finally:
            self.applying += time.perf_counter() - started


@dataclass
class Fleet:
    """A committed control-plane database of the benchmark's own, and what was made in it."""

    engine: Engine
    sessions: sessionmaker[Session]
    specs: list[RuntimeSpec] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sign_up(self) -> UUID:
        """Create a tenant as signup does (with its pending operation); its operation's id."""
        with self.lock, unit_of_work(self.sessions) as session:
            tenant = make_tenant(session)[2]
            self.specs.append(
                RuntimeSpec(
                    str(tenant.id), tenant.slug, "Bench", tenant.runtime_release, tenant.size_tier
                )
            )
            return session.scalars(
                select(Operation.id).where(Operation.tenant_id == tenant.id)
            ).one()


@pytest.fixture
def bench_settings(kube_settings: Settings) -> Settings:
    return kube_settings.model_copy(update={"reconcile_lease_seconds": 60})


@pytest.fixture
def fleet(postgres_admin_url: str, bench_settings: Settings) -> Iterator[Fleet]:
    name = f"backlot_bench_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    url = services.create_database(postgres_admin_url, name)
    migrations.upgrade(url)
    engine = build_engine(url)
    made = Fleet(engine, build_session_factory(engine))
    try:
        yield made
    finally:
        cleaner = KubernetesDriver(bench_settings)

        def remove(spec: RuntimeSpec) -> None:
            cleaner.destroy(spec)
            cleaner.purge(spec)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=CLEANUP_THREADS) as pool:
            list(pool.map(remove, made.specs))
        print(
            f"cleanup: {len(made.specs)} tenants destroyed and purged in "
            f"{time.monotonic() - started:.1f} s"
        )
        engine.dispose()
        services.drop_database(postgres_admin_url, name)


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def _figures(label: str, values: list[float]) -> str:
    return (
        f"{label:<34} median {statistics.median(values):6.2f} s   p95 {_p95(values):6.2f} s   "
        f"min {min(values):6.2f} s   max {max(values):6.2f} s"
    )


@pytest.mark.timeout(600)
def test_signup_to_ready_one_tenant_after_another(bench_settings: Settings, fleet: Fleet) -> None:
    driver = TimedDriver(bench_settings)
    reconciler = Reconciler(bench_settings, fleet.sessions, driver)
    rows: list[tuple[float, float, float, float, float]] = []
    statuses = []
    for _ in range(SEQUENTIAL_TENANTS):
        driver.waiting = driver.applying = driver.tenant_database = 0.0
        started = time.perf_counter()
        operation_id = fleet.sign_up()
        statuses.append(reconciler.run(operation_id).status)
        total = time.perf_counter() - started
        rows.append(
            (total, driver.waiting, driver.applying, driver.tenant_database, total - driver.waiting)
        )

    print(
        f"\n=== signup -> Ready on the test cluster, {SEQUENTIAL_TENANTS} tenants in sequence ==="
    )
    print("(signup row + commit, then Reconciler.run; no broker in between)")
    print(f"{'#':>3} {'total':>7} {'waiting':>8} {'overhead':>9} {'applies':>8} {'tenant db':>10}")
    for index, (total, waiting, applying, database, overhead) in enumerate(rows, start=1):
        print(
            f"{index:>3} {total:>6.2f}s {waiting:>7.2f}s {overhead:>8.2f}s "
            f"{applying:>7.2f}s {database:>9.2f}s"
        )
    print(_figures("total", [r[0] for r in rows]))
    print(_figures("waiting for the cluster", [r[1] for r in rows]))
    print(_figures("control-plane overhead", [r[4] for r in rows]))
    print(_figures("  of which server-side applies", [r[2] for r in rows]))
    print(_figures("  of which tenant database", [r[3] for r in rows]))
    assert statuses == ["ready"] * SEQUENTIAL_TENANTS


def _provision_within_budget(settings: Settings, fleet: Fleet) -> tuple[int, float, list[str]]:
    """Provision up to FLEET_TARGET tenants, starting none after the budget ran out."""
    driver = KubernetesDriver(settings)
    # Discovery filled once, before threads share the driver (see test_kubernetes_fleet.py).
    driver.observe(RuntimeSpec(str(UUID(int=0)), "warm-discovery", "Warm", "0.1.0", "small"))
    reconciler = Reconciler(settings, fleet.sessions, driver)
    deadline = time.monotonic() + FLEET_BUDGET_SECONDS
    started = time.monotonic()

    def one(_: int) -> str | None:
        if time.monotonic() > deadline:
            return None
        outcome = reconciler.run(fleet.sign_up())
        return (
            outcome.status if outcome.status == "ready" else f"{outcome.status}: {outcome.detail}"
        )

    with ThreadPoolExecutor(max_workers=FLEET_THREADS) as pool:
        statuses = [s for s in pool.map(one, range(FLEET_TARGET)) if s is not None]
    return len(statuses), time.monotonic() - started, statuses


def _warnings(settings: Settings, fleet: Fleet) -> list[str]:
    """The warning events in the namespaces of tenants that failed, to print."""
    with unit_of_work(fleet.sessions) as session:
        slugs = session.scalars(select(Tenant.slug).where(Tenant.state == TenantState.FAILED))
        namespaces = [f"t-{slug}" for slug in slugs]
    core = kube.CoreV1Api(kube_config.new_client_from_config(config_file=settings.kube_config))
    return [
        f"{ns} {e.involved_object.kind}/{e.involved_object.name} {e.reason}: {e.message}"
        for ns in namespaces
        for e in core.list_namespaced_event(ns).items
        if e.type == "Warning"
    ]


def _count_requests(driver: KubernetesDriver) -> Counter[str]:
    """Every HTTP request the driver's ApiClient sends, typed or dynamic, by verb."""
    verbs: Counter[str] = Counter()
    rest = driver._client.rest_client
    send: Callable[..., Any] = rest.request

    def counting(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        verbs[method.upper()] += 1
        return send(method, url, *args, **kwargs)

    rest.request = counting  # type: ignore[method-assign]
    return verbs


@pytest.mark.timeout(1200)
def test_a_resync_of_a_quiet_fleet(bench_settings: Settings, fleet: Fleet) -> None:
    provisioned, seconds, statuses = _provision_within_budget(bench_settings, fleet)
    print(
        f"\n=== provisioning the fleet: {provisioned} of {FLEET_TARGET} tenants started within "
        f"{FLEET_BUDGET_SECONDS:.0f} s ({FLEET_THREADS} threads), all done in {seconds:.1f} s "
        f"({provisioned / seconds:.2f} tenants/s) ==="
    )
    failed = [s for s in statuses if s != "ready"]
    print(f"not ready: {len(failed)} {failed}")
    for warning in _warnings(bench_settings, fleet):
        print(f"  {warning}")
    with unit_of_work(fleet.sessions) as session:
        active = session.scalars(select(Tenant).where(Tenant.state == TenantState.ACTIVE)).all()
    assert len(active) == provisioned - len(failed)

    driver = KubernetesDriver(bench_settings)
    requests = _count_requests(driver)
    probes = Counter[str]()
    exists = driver.databases.exists

    def counted_exists(tenant_id: str) -> bool:
        probes["tenant database probes (one psycopg connection each)"] += 1
        return exists(tenant_id)

    driver.databases.exists = counted_exists  # type: ignore[method-assign]
    statements: Counter[str] = Counter()

    def count_statement(*args: Any) -> None:
        statements[args[2].lstrip().split(None, 1)[0].upper()] += 1

    event.listen(fleet.engine, "before_cursor_execute", count_statement)
    started = time.perf_counter()
    try:
        requested = Reconciler(bench_settings, fleet.sessions, driver).resync()
    finally:
        wall = time.perf_counter() - started
        event.remove(fleet.engine, "before_cursor_execute", count_statement)

    writes = sum(statements[verb] for verb in WRITE_VERBS)
    print(f"=== Reconciler.resync() over {len(active)} active tenants ===")
    print(f"wall time: {wall:.2f} s ({wall / len(active) * 1000:.1f} ms per tenant)")
    print(f"tenants handed a new operation: {len(requested)}")
    print(
        f"Kubernetes API requests by verb: {dict(sorted(requests.items()))} "
        f"({sum(requests.values()) / len(active):.1f} per tenant)"
    )
    print(f"{dict(probes)}")
    print(f"control-plane SQL statements: {dict(sorted(statements.items()))}")
    print(f"control-plane database writes (INSERT/UPDATE/DELETE): {writes}")
    with unit_of_work(fleet.sessions) as session:
        degraded = Counter(
            f"{c['reason']}: {c['message'][:120]}"
            for conditions in session.scalars(
                select(Tenant.conditions).where(Tenant.id.in_(requested))
            )
            for c in conditions
            if c["type"] == "Degraded" and c["status"] == "True"
        )
    for why, count in degraded.most_common(5):
        print(f"  {count:>4} tenants Degraded, {why}")
    # Zero writes is the expectation, printed rather than asserted: when a kwok node misses
    # its heartbeat the node controller marks its pods unready, and the resync then rightly
    # writes conditions and requests repairs.
