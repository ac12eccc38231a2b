"""Stripe webhook intake throughput and handling latency, on PostgreSQL with localstripe.

Intake: signed events posted to the real endpoint (verify, store in the inbox, queue), in
process. Handling: the worker's function for one event (re-fetch from localstripe, mirror,
stamp handled). Prints figures; asserts only that every event was accepted and handled.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.orm import Session

from billing import inbox
from billing.gateway import StripeGateway
from control_plane.core.settings import Settings
from tests.billing.conftest import (  # noqa: F401 - fixtures
    PaidSignup,
    active,
    catalog_in_localstripe,
    client,
    event,
    gateway,
    localstripe_url,
    paid_signup,
    post_event,
    stripe_settings,
)

pytestmark = [pytest.mark.bench, pytest.mark.stripe, pytest.mark.integration]

RUNS = 5
EVENTS_PER_RUN = 200


def test_webhook_intake_and_handling(
    active: PaidSignup,  # noqa: F811
    client: TestClient[Any],  # noqa: F811
    db_session: Session,
    stripe_settings: Settings,  # noqa: F811
    gateway: StripeGateway,  # noqa: F811
) -> None:
    assert active.account.subscription_id is not None
    subscription = gateway.retrieve_subscription(active.account.subscription_id)
    rates: list[float] = []
    delivered: list[str] = []
    for _ in range(RUNS):
        bodies = [
            event("customer.subscription.updated", subscription) for _ in range(EVENTS_PER_RUN)
        ]
        started = time.perf_counter()
        for body in bodies:
            assert post_event(client, body).status_code == 200
        rates.append(EVENTS_PER_RUN / (time.perf_counter() - started))
        delivered.extend(b["id"] for b in bodies)

    latencies: list[float] = []
    for event_id in delivered[:200]:
        started = time.perf_counter()
        assert inbox.handle(db_session, stripe_settings, gateway, event_id) == "handled"
        db_session.commit()
        latencies.append((time.perf_counter() - started) * 1000)

    latencies.sort()
    print(
        f"\nwebhook intake: median {statistics.median(rates):.0f} events/s "
        f"over {RUNS} runs of {EVENTS_PER_RUN} (min {min(rates):.0f}, max {max(rates):.0f})"
        f"\nevent handling: median {statistics.median(latencies):.1f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95)]:.1f} ms over {len(latencies)} events"
    )
