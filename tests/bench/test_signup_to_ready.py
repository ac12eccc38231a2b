"""How long a signup takes to become a live portal, on the embedded default.

Prints figures; asserts only that every signup reached ``active`` (timings vary by machine).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.product import Product, hidden_input, running_product

pytestmark = [pytest.mark.bench, pytest.mark.embedded]

SIGNUPS = 5
POLL_INTERVAL_SECONDS = 0.05
ACTIVE_TIMEOUT_SECONDS = 120.0


def _sign_up_and_wait(product: Product, index: int) -> tuple[float, dict[str, object]]:
    """Submit one signup over HTTP; seconds from submit to ``active``, and the last status."""
    with httpx.Client(
        base_url=product.base_url,
        follow_redirects=True,
        timeout=30.0,
        headers={"Accept": "text/html"},
    ) as client:
        page = client.get("/signup")
        assert page.status_code == 200
        form = {
            "_csrf_token": hidden_input(page.text, "_csrf_token"),
            "signup_token": hidden_input(page.text, "signup_token"),
            "organization_name": f"Bench Org {index}",
            "slug": f"bench-org-{index}",
            "email": f"bench.owner{index}@example.com",
            "password": "orchid-lantern-velvet-9",
            "plan": "free",
        }
        submitted = time.monotonic()
        progress = client.post("/signup", data=form)
        assert progress.status_code == 200, progress.text
        assert progress.url.path == "/console/progress"

        status: dict[str, object] = {}
        deadline = submitted + ACTIVE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            response = client.get("/api/v1/tenant", headers={"Accept": "application/json"})
            assert response.status_code == 200, response.text
            status = response.json()
            if status["state"] == "active":
                return time.monotonic() - submitted, status
            time.sleep(POLL_INTERVAL_SECONDS)
        return time.monotonic() - submitted, status


def test_signup_to_active(tmp_path: Path) -> None:
    durations: list[float] = []
    finals: list[dict[str, object]] = []
    with running_product(tmp_path / "data") as product:
        for index in range(1, SIGNUPS + 1):
            seconds, status = _sign_up_and_wait(product, index)
            durations.append(seconds)
            finals.append(status)
        log = product.log_tail()

    print("\n=== Backlot benchmark: signup submit -> tenant active (embedded default) ===")
    print(f"product start -> /readyz 200: {product.seconds_to_ready:6.2f} s")
    for index, (seconds, status) in enumerate(zip(durations, finals, strict=True), start=1):
        print(f"signup {index}: {seconds:6.2f} s  state={status.get('state')}")
    print(
        f"median {statistics.median(durations):6.2f} s   min {min(durations):6.2f} s   "
        f"max {max(durations):6.2f} s   (n={len(durations)})"
    )
    assert [status.get("state") for status in finals] == ["active"] * SIGNUPS, (
        f"not every signup reached active: {finals}; product log:\n{log}"
    )
