"""How long from "install" in the control plane to the plugin answering in a running runtime.

A real control plane (served on loopback) and a real runtime process linked by the uplink,
polling every 0.25 s as configured here (10 s by default in production: the expected wait
there is about half of that). Prints the median and the spread; asserts only that every
install went live and every uninstall went away.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from control_plane.core.database import build_session_factory
from control_plane.core.settings import Settings
from control_plane.marketplace import service as marketplace
from control_plane.marketplace.seed import seed
from tests.control_plane.factories import make_tenant
from tests.control_plane.marketplace.live import run_runtime, serve_control_plane, wait_for

pytestmark = [pytest.mark.bench, pytest.mark.marketplace, pytest.mark.integration]

RUNS = 7
PLUGIN_API = "/api/plugins/cicd/runs?entity=component:default/orders-service"


def test_time_from_install_to_the_plugin_answering(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    sessions = build_session_factory(engine)
    with sessions() as session:
        _, _, tenant = make_tenant(session)
        seed(session)
        session.commit()
    activations: list[float] = []
    removals: list[float] = []
    with (
        serve_control_plane(settings, sessions) as (url, served),
        run_runtime(tmp_path / "runtime", tenant, served, url) as runtime,
    ):
        for _ in range(RUNS):
            with sessions() as session:
                plugin = marketplace.get_plugin(session, "cicd")
                marketplace.install(session, tenant, plugin, actor="user:bench")
                session.commit()
            started = time.monotonic()
            wait_for(lambda: runtime.get(PLUGIN_API).status_code == 200, 30, runtime, "live")
            activations.append(time.monotonic() - started)

            with sessions() as session:
                plugin = marketplace.get_plugin(session, "cicd")
                marketplace.uninstall(session, tenant, plugin, actor="user:bench")
                session.commit()
            started = time.monotonic()
            wait_for(lambda: runtime.get(PLUGIN_API).status_code == 404, 30, runtime, "gone")
            removals.append(time.monotonic() - started)

    print(
        f"\nplugin activation, install -> answering ({RUNS} runs, uplink polling every 0.25 s): "
        f"median {statistics.median(activations):.3f} s, min {min(activations):.3f} s, "
        f"max {max(activations):.3f} s"
    )
    print(
        f"plugin removal, uninstall -> 404 ({RUNS} runs): "
        f"median {statistics.median(removals):.3f} s, max {max(removals):.3f} s"
    )
    assert len(activations) == len(removals) == RUNS
