"""The time a rollout over 200 tenants takes on the real test cluster.

The tenants are first provisioned by the real reconciler and driver; then a rollout with the
default waves (1 %, 10 %, 50 %, 100 %) moves them to a new release. The clock runs from the
rollout's start to its end: each tick of the rollout task, then the wave's reconciles in
eight threads, as one worker process with eight threads would. kwok's pods turn Ready at
once, so the figure is the control loop's own cost (server-side applies, the Deployment
rollout through the controller manager, database writes), not container start time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from control_plane.core.database import unit_of_work
from control_plane.core.settings import Settings
from control_plane.fleet import releases, rollouts
from control_plane.fleet.models import RolloutState
from tests.control_plane.fleet.cluster_fleet import ClusterFleet, cluster_fleet

pytestmark = [pytest.mark.bench, pytest.mark.fleet, pytest.mark.k8s]

TENANTS = int(os.environ.get("BACKLOT_BENCH_ROLLOUT_TENANTS", "200"))


@pytest.fixture
def fleet(kube_settings: Settings, postgres_admin_url: str) -> Iterator[ClusterFleet]:
    name = f"backlot_bench_rollout_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    with cluster_fleet(kube_settings, postgres_admin_url, name) as made:
        yield made


@pytest.mark.timeout(3600)
def test_rollout_over_two_hundred_tenants(fleet: ClusterFleet) -> None:
    started = time.perf_counter()
    fleet.provision(TENANTS)
    provisioned = time.perf_counter() - started

    with unit_of_work(fleet.sessions) as session:
        releases.register(
            session, version="9.0.0", image="registry.example/runtime:9.0.0", actor="bench"
        )
        rollout = rollouts.start(session, version="9.0.0", actor="bench")
        waves = [w["percent"] for w in rollout.waves]
    started = time.perf_counter()
    state = fleet.drive(rollout.id, timeout=3000)
    took = time.perf_counter() - started

    print(f"\n{TENANTS} tenants provisioned in {provisioned:.1f}s (8 threads)")
    print(
        f"rollout to 9.0.0 in waves {waves} %: {took:.1f}s "
        f"({took / TENANTS * 1000:.0f} ms per tenant), ended {state}"
    )
    on_release = [t.runtime_release for t in fleet.tenants()]
    assert (state, set(on_release)) == (RolloutState.SUCCEEDED, {"9.0.0"})
