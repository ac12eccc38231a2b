"""Fleet list latency through the admin API with 10,000 tenants in the database.

Each request goes the whole way: the operator token is checked, the call is audited (one
committed row), the filter and sort run on PostgreSQL, one page is serialised. Prints p50
and p95 per query shape; asserts only that the answers were right.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.core import migrations
from control_plane.core.database import build_engine, build_session_factory, unit_of_work
from control_plane.core.settings import Settings
from control_plane.fleet import operators
from control_plane.identity.models import Organization
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from infra.testenv import services

pytestmark = [pytest.mark.bench, pytest.mark.fleet, pytest.mark.integration]

TENANTS = int(os.environ.get("BACKLOT_BENCH_FLEET_TENANTS", "10000"))
REQUESTS = 100
QUERIES: dict[str, dict[str, Any]] = {
    "default (failing first)": {},
    "state=active, by slug": {"state": "active", "sort": "slug"},
    "plan=team, newest first": {"plan": "team", "sort": "-created_at"},
    "health=failing": {"health": "failing"},
    "release + region, page 20": {"release": "1.1.0", "region": "eu-west", "page": 20},
    "slug contains": {"q": "42"},
}


@pytest.fixture(scope="module")
def bench_database(postgres_admin_url: str) -> Iterator[tuple[str, sessionmaker[Session]]]:
    name = f"backlot_bench_fleet_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    url = services.create_database(postgres_admin_url, name)
    migrations.upgrade(url)
    engine = build_engine(url)
    try:
        yield url, build_session_factory(engine)
    finally:
        engine.dispose()
        services.drop_database(postgres_admin_url, name)


def _fill(sessions: sessionmaker[Session], count: int) -> None:
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    states = [TenantState.ACTIVE] * 90 + [TenantState.SUSPENDED] * 5 + [TenantState.FAILED] * 2
    states += [TenantState.PROVISIONING] * 3
    organizations, tenants = [], []
    for i in range(count):
        org_id = uuid.uuid4()
        created = now - dt.timedelta(minutes=rng.randint(0, 500_000))
        organizations.append(
            {
                "id": org_id,
                "name": f"Org {i}",
                "slug": f"org-{i:05d}",
                "plan": "free",
                "created_at": created,
                "updated_at": created,
            }
        )
        tenants.append(
            {
                "id": uuid.uuid4(),
                "organization_id": org_id,
                "slug": f"org-{i:05d}",
                "plan": rng.choice(["free", "team", "team", "enterprise"]),
                "runtime_release": rng.choice(["1.0.0", "1.1.0", "1.1.0", "1.2.0"]),
                "size_tier": "small",
                "suspended": False,
                "suspension_holds": [],
                "generation": 2,
                "observed_generation": 2,
                "state": rng.choice(states),
                "conditions": [],
                "runtime_names": {},
                "region": rng.choice(["eu-west", "us-east", "ap-south"]),
                "rollout_cohort": "default",
                "last_active_at": now - dt.timedelta(hours=rng.randint(0, 2000)),
                "created_at": created,
                "updated_at": created,
            }
        )
    with unit_of_work(sessions) as session:
        for start in range(0, count, 2000):
            session.execute(insert(Organization), organizations[start : start + 2000])
            session.execute(insert(Tenant), tenants[start : start + 2000])


def test_fleet_list_latency_with_ten_thousand_tenants(
    bench_database: tuple[str, sessionmaker[Session]], settings: Settings
) -> None:
    url, bench_sessions = bench_database
    started = time.perf_counter()
    _fill(bench_sessions, TENANTS)
    filled = time.perf_counter() - started
    with unit_of_work(bench_sessions) as session:
        _, token = operators.issue(session, name="bench", operator="bench", scopes=["read"])
    headers = {"Authorization": f"Bearer {token}"}
    bench_settings = settings.model_copy(update={"database_url": url})
    print(f"\n{TENANTS} tenants inserted in {filled:.1f}s; {REQUESTS} requests per query")
    print(f"{'query':<28} {'total':>6} {'p50 ms':>8} {'p95 ms':>8}")
    with TestClient(app=create_app(bench_settings, sessions=bench_sessions)) as client:
        totals = {}
        for label, params in QUERIES.items():
            client.get("/admin/v1/tenants", params=params, headers=headers)  # warm
            timings = []
            for _ in range(REQUESTS):
                t0 = time.perf_counter()
                response = client.get("/admin/v1/tenants", params=params, headers=headers)
                timings.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.text
            totals[label] = response.json()["total"]
            cuts = statistics.quantiles(timings, n=20)
            p50 = statistics.median(timings)
            print(f"{label:<28} {totals[label]:>6} {p50:>8.1f} {cuts[18]:>8.1f}")
    assert totals["default (failing first)"] == TENANTS
