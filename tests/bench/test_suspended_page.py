"""The suspended page: the local stand-in's start time and memory, and the page's latency.

Prints figures; asserts only that every answer was the suspended page.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.provisioning.drivers import suspended_page
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from tests.control_plane.factories import make_tenant
from tests.control_plane.marketplace.live import free_port

pytestmark = [pytest.mark.bench, pytest.mark.stripe, pytest.mark.integration]

RUNS = 5
REQUESTS = 200


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _start_stand_in(port: int) -> subprocess.Popen[bytes]:
    unreachable = f"http://127.0.0.1:{free_port()}/suspended/acme"
    return subprocess.Popen(
        [
            sys.executable,
            str(Path(suspended_page.__file__)),
            *("--port", str(port), "--page", unreachable),
        ]
    )


def _first_answer(url: str, deadline: float) -> httpx.Response:
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=2)
        except httpx.ConnectError:
            time.sleep(0.005)
    pytest.fail(f"nothing answered at {url}", pytrace=False)


def test_the_local_stand_in_starts_fast_and_small() -> None:
    starts: list[float] = []
    memory: list[int] = []
    for _ in range(RUNS):
        port = free_port()
        started = time.monotonic()
        process = _start_stand_in(port)
        try:
            answer = _first_answer(f"http://127.0.0.1:{port}/", started + 10)
            starts.append(time.monotonic() - started)
            memory.append(_rss_kib(process.pid))
        finally:
            process.terminate()
            process.wait(timeout=10)
        assert answer.status_code == 503
    print(
        f"\nsuspended-page stand-in: start to first answer median "
        f"{statistics.median(starts) * 1000:.0f} ms (runs {RUNS}), "
        f"RSS median {statistics.median(memory) / 1024:.1f} MiB"
    )


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(settings, sessions=sessions)) as test_client:
        yield test_client


def test_the_control_plane_serves_the_page_quickly(
    client: TestClient[Any], db_session: Session
) -> None:
    _, _, tenant = make_tenant(db_session)
    tenant.state = TenantState.ACTIVE
    tenants.suspend(db_session, tenant, holder="billing", actor="bench")
    db_session.commit()
    client.get(f"/suspended/{tenant.slug}")
    latencies: list[float] = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        answer = client.get(f"/suspended/{tenant.slug}")
        latencies.append(time.perf_counter() - started)
        assert answer.status_code == 503
    latencies.sort()
    print(
        f"\nsuspended page (control plane, in process, PostgreSQL): median "
        f"{statistics.median(latencies) * 1000:.2f} ms, p95 "
        f"{latencies[int(len(latencies) * 0.95)] * 1000:.2f} ms over {REQUESTS} requests"
    )
