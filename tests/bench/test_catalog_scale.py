"""The catalog at 10,000 (and, on request, 100,000) entities, on PostgreSQL.

Run: `make bench-catalog` (10k) or `BACKLOT_BENCH_CATALOG_SIZES=10000,100000 make bench-catalog`.
Prints the ingestion rate, p50/p95 latencies of the catalog's query routes over HTTP, and
the runtime process's memory. Asserts only that the answers are right, not how fast.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.testenv import services
from tests.tenant_runtime.generated_catalog import generate, write_catalog
from tests.tenant_runtime.live import SERVICE_TOKEN, LiveRuntime, live_runtime

# Loading 100,000 entities takes minutes on a small machine: far beyond the suite-wide limit.
pytestmark = [pytest.mark.bench, pytest.mark.integration, pytest.mark.timeout(1800)]

SIZES = [int(s) for s in os.environ.get("BACKLOT_BENCH_CATALOG_SIZES", "10000").split(",")]
ROUNDS = 200
TENANT_ID = "b3c4d5e6-f7a8-4b9c-8d0e-1f2a3b4c5d6e"


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of the process, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def timed(rounds: int, request: Callable[[int], httpx.Response]) -> tuple[float, float]:
    """p50 and p95 in milliseconds of `rounds` requests; every answer must be 200."""
    samples = []
    for index in range(rounds):
        started = time.perf_counter()
        response = request(index)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:500]
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


@pytest.mark.parametrize("size", SIZES)
def test_catalog_at_scale(size: int, tmp_path: Path, postgres_admin_url: str) -> None:
    entities = generate(size)
    root = write_catalog(entities, tmp_path / "catalog")
    name = f"backlot_catalog_bench_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    database_url = services.create_database(postgres_admin_url, name)
    try:
        with live_runtime(
            tmp_path / "runtime",
            database_url,
            allow_hosts=[],
            file_roots=[root.parent],
            tenant_id=TENANT_ID,
        ) as runtime:
            report = measure(runtime, root, size)
    finally:
        services.drop_database(postgres_admin_url, name)
    print(f"\ncatalog benchmark, {size:,} generated entities (+ 8 seeded), PostgreSQL")
    for line in report:
        print(f"  {line}")


def measure(runtime: LiveRuntime, root: Path, size: int) -> list[str]:
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    report: list[str] = []
    with httpx.Client(base_url=runtime.catalog_url, headers=headers, timeout=3600) as client:
        started = time.perf_counter()
        registered = client.post("/locations", json={"type": "file", "target": str(root)})
        seconds = time.perf_counter() - started
        assert registered.status_code == 201, registered.text
        total = client.get("/entities/by-query", params={"limit": 0}).json()["totalItems"]
        # The generated entities, the seed, the root Location and the generated one.
        assert total == size + 8 + 2
        report.append(f"ingestion: {size / seconds:,.0f} entities/s ({seconds:.1f} s)")
        rss, peak = rss_mib(runtime.pid)
        report.append(f"memory after ingestion: RSS {rss:.0f} MiB (peak {peak:.0f} MiB)")

        groups = max(2, size // 100)

        def filtered(index: int) -> httpx.Response:
            team = f"group:default/team-{index % groups}"
            return client.get(
                "/entities",
                params={
                    "filter": f"kind=component,spec.lifecycle=production,relations.ownedby={team}"
                },
            )

        def filtered_page(index: int) -> httpx.Response:
            kind = ["component", "api", "resource"][index % 3]
            return client.get(
                "/entities", params={"filter": f"kind={kind},spec.type=service", "limit": 50}
            )

        def by_name(index: int) -> httpx.Response:
            return client.get(f"/entities/by-name/component/default/component-{index * 37 % 1000}")

        def facets(index: int) -> httpx.Response:
            facet = ["spec.type", "spec.lifecycle", "metadata.tags"][index % 3]
            return client.get("/entity-facets", params={"facet": facet, "filter": "kind=component"})

        def facets_filtered(index: int) -> httpx.Response:
            # A filter beyond the kind: counted from the search rows, not the store's counts.
            facet = ["spec.lifecycle", "metadata.tags"][index % 2]
            return client.get(
                "/entity-facets",
                params={"facet": facet, "filter": "kind=component,spec.type=service"},
            )

        def facets_all(index: int) -> httpx.Response:
            return client.get("/entity-facets", params={"facet": "kind"})

        def full_text(index: int) -> httpx.Response:
            word = ["orders", "billing", "search", "payments"][index % 4]
            return client.get(
                "/entities/by-query",
                params={"fullTextFilterTerm": f"{word} component-1", "limit": 20},
            )

        def full_text_field(index: int) -> httpx.Response:
            return client.get(
                "/entities/by-query",
                params={
                    "fullTextFilterTerm": f"component-{index % 500}",
                    "fullTextFilterFields": "metadata.name",
                    "limit": 20,
                },
            )

        cursor: dict[str, Any] = {}

        def paging(index: int) -> httpx.Response:
            params: dict[str, Any] = {"limit": 100}
            if index % 20 and cursor.get("next"):
                params["cursor"] = cursor["next"]
            else:
                params |= {"filter": "kind=component", "orderField": "metadata.name,asc"}
            response = client.get("/entities/by-query", params=params)
            cursor["next"] = response.json()["pageInfo"].get("nextCursor")
            return response

        for label, request in [
            ("GET /entities filtered (kind, lifecycle, owner relation)", filtered),
            ("GET /entities filtered, limit 50", filtered_page),
            ("by-query paging (100 per page, by name, 20 pages deep)", paging),
            ("facets (one field, kind=component)", facets),
            ("facets (one field, kind=component,spec.type=service)", facets_filtered),
            ("facets (kind, whole catalog)", facets_all),
            ("by-name", by_name),
            ("full-text search (tsvector, two words)", full_text),
            ("full-text filter on metadata.name (substring)", full_text_field),
        ]:
            p50, p95 = timed(ROUNDS, request)
            report.append(f"{label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        rss, peak = rss_mib(runtime.pid)
        report.append(f"memory after queries: RSS {rss:.0f} MiB (peak {peak:.0f} MiB)")
    return report
