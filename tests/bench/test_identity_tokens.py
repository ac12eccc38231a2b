# ruff: noqa: F811 - the identity fixtures are imported by name and requested by name
"""How fast the control plane signs handoff tickets and serves its JWKS, and what the runtime's
``sso`` section costs to build (it is polled every few seconds by every portal).

Prints figures; asserts only that the work was done (timings vary by machine).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from control_plane.core.settings import Settings
from control_plane.identity import signing
from control_plane.identity.sso import service as sso

# The identity tests' fixtures: a signed-in owner of a running portal.
from tests.control_plane.identity.conftest import Console, client, console, enforce_sso, settings  # noqa: F401

pytestmark = [pytest.mark.bench, pytest.mark.sso, pytest.mark.integration]

ROUNDS = 200


def _measure(label: str, work: Callable[[], Any]) -> list[float]:
    work()  # warm: the first call may create the signing key
    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        work()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    print(
        f"\n{label}: median {statistics.median(timings):.2f} ms, "
        f"p95 {timings[int(len(timings) * 0.95)]:.2f} ms over {ROUNDS} rounds"
    )
    return timings


def test_signing_a_ticket(db_session: Session, settings: Settings) -> None:
    timings = _measure(
        "sign (read key, decrypt, EdDSA)",
        lambda: signing.sign(db_session, {"sub": "bench", "aud": "x"}, settings=settings),
    )
    assert len(timings) == ROUNDS


def test_the_portal_handoff_over_http(console: Console) -> None:
    timings = _measure(
        "GET /console/portal (session, membership, SSO state, ticket)",
        lambda: console.client.get("/console/portal", follow_redirects=False),
    )
    assert len(timings) == ROUNDS


def test_the_jwks_over_http(console: Console) -> None:
    timings = _measure(
        "GET /.well-known/jwks.json", lambda: console.client.get("/.well-known/jwks.json")
    )
    assert len(timings) == ROUNDS


def test_building_the_sso_section(
    console: Console, db_session: Session, settings: Settings
) -> None:
    enforce_sso(db_session, console.tenant)
    timings = _measure(
        "sso section for the runtime config document",
        lambda: sso.sso_section(db_session, settings, console.tenant),
    )
    assert len(timings) == ROUNDS
