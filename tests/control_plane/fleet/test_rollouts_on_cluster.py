"""Rollouts on the real test cluster: waves move tenants' Deployments to the release's image;
a release whose pods never become ready (or crash-loop) fails the canary's health gate, and
the wave goes back by itself.

kwok marks every pod Ready at once, except pods of the images kept broken by
``infra/cluster/kwok-stages.yaml``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from control_plane.audit import service as audit
from control_plane.core.database import unit_of_work
from control_plane.core.settings import Settings
from control_plane.fleet import releases, rollouts
from control_plane.fleet.models import Rollout, RolloutState, RolloutTarget, TargetState
from control_plane.tenants.lifecycle import TenantState
from infra.cluster.cluster import CRASH_LOOP_IMAGE, NEVER_READY_IMAGE
from tests.control_plane.fleet.cluster_fleet import ClusterFleet, cluster_fleet

pytestmark = [pytest.mark.fleet, pytest.mark.k8s, pytest.mark.integration]

DEFAULT_IMAGE = "backlot/tenant-runtime:0.1.0"
WAVES = [{"name": "canary", "percent": 25}, {"name": "rest", "percent": 100}]


@pytest.fixture
def fleet(kube_settings: Settings, postgres_admin_url: str) -> Iterator[ClusterFleet]:
    # A broken release fails the reconcile after this long, so the gate fails fast.
    settings = kube_settings.model_copy(update={"runtime_start_timeout_seconds": 8})
    name = f"backlot_rollouts_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    with cluster_fleet(settings, postgres_admin_url, name) as made:
        yield made


def _start(fleet: ClusterFleet, version: str, image: str) -> Rollout:
    with unit_of_work(fleet.sessions) as session:
        releases.register(session, version=version, image=image, actor="operator:test")
        return rollouts.start(
            session, version=version, actor="operator:test", waves=WAVES, ready_deadline_seconds=60
        )


def _targets(fleet: ClusterFleet, rollout: Rollout) -> dict[object, RolloutTarget]:
    with unit_of_work(fleet.sessions) as session:
        found = session.scalars(
            select(RolloutTarget).where(RolloutTarget.rollout_id == rollout.id)
        ).all()
        return {t.tenant_id: t for t in found}


def test_a_rollout_moves_every_wave_to_the_release_image(fleet: ClusterFleet) -> None:
    tenant_ids = fleet.provision(4)
    rollout = _start(fleet, "2.0.0", "registry.example/backlot/tenant-runtime:2.0.0")

    state = fleet.drive(rollout.id)

    assert (
        state,
        [(t.state, t.runtime_release) for t in fleet.tenants()],
        {fleet.deployed_image(t) for t in tenant_ids},
    ) == (
        RolloutState.SUCCEEDED,
        [(TenantState.ACTIVE, "2.0.0")] * 4,
        {"registry.example/backlot/tenant-runtime:2.0.0"},
    )


def test_a_rollout_goes_wave_by_wave(fleet: ClusterFleet) -> None:
    fleet.provision(4)
    rollout = _start(fleet, "2.0.1", "registry.example/backlot/tenant-runtime:2.0.1")
    with unit_of_work(fleet.sessions) as session:
        rollouts.advance(session, rollout.id)
    moving_after_first_tick = sorted(
        (t.wave, str(t.state)) for t in _targets(fleet, rollout).values()
    )
    assert moving_after_first_tick == [
        (0, "moving"),
        (1, "waiting"),
        (1, "waiting"),
        (1, "waiting"),
    ]


@pytest.mark.parametrize("image", [NEVER_READY_IMAGE, CRASH_LOOP_IMAGE])
def test_a_failed_health_gate_rolls_the_wave_back(fleet: ClusterFleet, image: str) -> None:
    tenant_ids = fleet.provision(4)
    rollout = _start(fleet, "3.0.0-broken", image)

    state = fleet.drive(rollout.id)

    targets = _targets(fleet, rollout)
    canary = next(t for t in targets.values() if t.wave == 0)
    assert (
        state,
        canary.state,
        sorted(str(t.state) for t in targets.values() if t.wave == 1),
        [(t.state, t.runtime_release) for t in fleet.tenants()],
        {fleet.deployed_image(t) for t in tenant_ids},
    ) == (
        RolloutState.FAILED,
        TargetState.ROLLED_BACK,
        ["waiting", "waiting", "waiting"],
        [(TenantState.ACTIVE, "0.1.0")] * 4,
        {DEFAULT_IMAGE},
    )


def test_a_failed_gate_says_why_and_is_audited(fleet: ClusterFleet) -> None:
    fleet.provision(2)
    rollout = _start(fleet, "3.0.1-broken", CRASH_LOOP_IMAGE)
    fleet.drive(rollout.id)
    with unit_of_work(fleet.sessions) as session:
        finished = rollouts.get_rollout(session, rollout.id)
        actions = [e.action for e in audit.entries(session, action=None)]
    assert (
        finished.message.startswith(
            "wave canary: health gate failed for 1 tenant(s): CrashLoopBackOff"
        ),
        [a for a in actions if a.startswith("rollout.")],
    ) == (True, ["rollout.failed", "rollout.gate-failed", "rollout.start"])
