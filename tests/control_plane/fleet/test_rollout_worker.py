"""A rollout driven by a real Celery worker with beat, on the real test cluster: the worker is
killed in the middle of the rollout, a new one takes over, and the rollout still completes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import pytest
import redis
from sqlalchemy import select

from control_plane.core.database import unit_of_work
from control_plane.core.settings import Settings
from control_plane.fleet import releases, rollouts
from control_plane.fleet.models import RolloutState, RolloutTarget, TargetState
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from tests.control_plane.factories import make_tenant
from tests.control_plane.fleet.cluster_fleet import ClusterFleet, cluster_fleet

pytestmark = [pytest.mark.fleet, pytest.mark.k8s, pytest.mark.worker, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[3]
# A Redis database no other part of the suite uses, flushed before and after.
BROKER_DB = 11
T = TypeVar("T")


@pytest.fixture
def fleet(kube_settings: Settings, postgres_admin_url: str) -> Iterator[ClusterFleet]:
    name = f"backlot_rollout_worker_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    with cluster_fleet(kube_settings, postgres_admin_url, name) as made:
        yield made


class Worker:
    """``celery worker --beat`` in its own process group."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "control_plane.celery_main",
                    "worker",
                    "--beat",
                    "--concurrency",
                    "4",
                    "--loglevel",
                    "INFO",
                ],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def _wait(probe: Callable[[], T | None], what: str, worker: Worker, timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited waiting for {what}\n{worker.tail()}", pytrace=False)
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}\n{worker.tail()}", pytrace=False)


def test_a_rollout_survives_its_worker_being_killed(
    fleet: ClusterFleet, kube_settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    broker = f"{redis_url}/{BROKER_DB}"
    redis.Redis.from_url(broker).flushdb()
    database_url = fleet.sessions.kw["bind"].url.render_as_string(hide_password=False)
    settings = kube_settings.model_copy(
        update={
            "database_url": database_url,
            "broker_url": broker,
            "data_dir": tmp_path / "worker",
            "rollout_tick_seconds": 1,
            "outbox_relay_interval_seconds": 1,
            "resync_interval_seconds": 2,
        }
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKLOT_")}
    for key in (
        "env",
        "database_url",
        "broker_url",
        "data_dir",
        "runtime_driver",
        "kube_config",
        "kube_tolerations",
        "kube_node_selector",
        "base_domain",
        "runtime_start_timeout_seconds",
        "reconcile_lease_seconds",
        "rollout_tick_seconds",
        "outbox_relay_interval_seconds",
        "resync_interval_seconds",
    ):
        env[f"BACKLOT_{key.upper()}"] = str(getattr(settings, key))
    env["BACKLOT_SECRET_KEY"] = settings.secret_key.get_secret_value()
    env["BACKLOT_TENANT_DATABASE_ADMIN_URL"] = settings.tenant_database_admin_url.get_secret_value()

    with unit_of_work(fleet.sessions) as session:
        fleet.tenant_ids += [make_tenant(session)[2].id for _ in range(3)]
    worker = Worker(env, tmp_path / "worker-1.log")
    try:

        def all_active() -> bool | None:
            with unit_of_work(fleet.sessions) as session:
                states = session.scalars(
                    select(Tenant.state).where(Tenant.id.in_(fleet.tenant_ids))
                ).all()
            return True if set(states) == {TenantState.ACTIVE} else None

        _wait(all_active, "the tenants to be provisioned", worker, 180)
        with unit_of_work(fleet.sessions) as session:
            releases.register(
                session, version="5.0.0", image="registry.example/rt:5.0.0", actor="test"
            )
            rollout_id: UUID = rollouts.start(
                session,
                version="5.0.0",
                actor="test",
                waves=[{"name": "first", "percent": 34}, {"name": "rest", "percent": 100}],
            ).id

        def first_wave_moved() -> bool | None:
            with unit_of_work(fleet.sessions) as session:
                states = session.scalars(
                    select(RolloutTarget.state).where(RolloutTarget.rollout_id == rollout_id)
                ).all()
            return (
                True if TargetState.WAITING not in states or TargetState.MOVING in states else None
            )

        _wait(first_wave_moved, "the first wave to move", worker, 60)
        worker.kill()
        worker = Worker(env, tmp_path / "worker-2.log")

        def ended() -> RolloutState | None:
            with unit_of_work(fleet.sessions) as session:
                state = rollouts.get_rollout(session, rollout_id).state
            return state if state not in (RolloutState.RUNNING, RolloutState.ROLLING_BACK) else None

        state = _wait(ended, "the rollout to end", worker, 240)
    finally:
        worker.kill()
        redis.Redis.from_url(broker).flushdb()

    assert (
        state,
        [(t.state, t.runtime_release) for t in fleet.tenants()],
        {fleet.deployed_image(t) for t in fleet.tenant_ids},
    ) == (
        RolloutState.SUCCEEDED,
        [(TenantState.ACTIVE, "5.0.0")] * 3,
        {"registry.example/rt:5.0.0"},
    )
