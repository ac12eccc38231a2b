"""Seat decreases wait for the renewal and credit nothing; increases go at once (localstripe)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.orm import Session

from billing import seats
from billing.gateway import StripeGateway
from control_plane.core.settings import Settings
from tests.billing.conftest import PaidSignup, sign_in
from tests.billing.test_seats import changes, report, tick

pytestmark = [pytest.mark.stripe, pytest.mark.integration]


class Recorded:
    """The gateway's seat calls, as sent (the real call still goes to localstripe)."""

    def __init__(self, gateway: StripeGateway) -> None:
        self.calls: list[dict[str, Any]] = []
        original = gateway.change_subscription

        def recording(*args: Any, **kwargs: Any) -> dict[str, Any]:
            self.calls.append(kwargs)
            return original(*args, **kwargs)

        gateway.change_subscription = recording  # type: ignore[method-assign]


def _stripe_quantity(gateway: StripeGateway, signup_: PaidSignup) -> int:
    assert signup_.account.subscription_id is not None
    subscription = gateway.retrieve_subscription(signup_.account.subscription_id)
    return int(subscription["items"]["data"][0]["quantity"])


def _period_end(signup_: PaidSignup) -> dt.datetime:
    assert signup_.account.current_period_end is not None
    return signup_.account.current_period_end


@pytest.fixture
def ten_seats(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> PaidSignup:
    """A Team subscription that grew to 10 seats, then whose usage fell to 6."""
    start = seats.decrease_due_at(active.account)
    assert start is not None
    grew = start - dt.timedelta(days=10)
    report(db_session, active, 10, grew)
    tick(db_session, stripe_settings, gateway, grew)
    report(db_session, active, 6, grew + dt.timedelta(days=1))
    db_session.commit()
    return active


def test_a_decrease_is_not_sent_during_the_period(
    ten_seats: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    midway = _period_end(ten_seats) - dt.timedelta(days=5)
    tick(db_session, stripe_settings, gateway, midway)
    assert (_stripe_quantity(gateway, ten_seats), ten_seats.account.quantity) == (10, 10)


def test_a_decrease_reaches_stripe_just_before_the_renewal(
    ten_seats: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    renewal = _period_end(ten_seats) - dt.timedelta(minutes=30)
    tick(db_session, stripe_settings, gateway, renewal)
    assert (_stripe_quantity(gateway, ten_seats), ten_seats.account.quantity) == (6, 6)


def test_a_decrease_credits_nothing(
    ten_seats: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    recorded = Recorded(gateway)
    tick(db_session, stripe_settings, gateway, _period_end(ten_seats) - dt.timedelta(minutes=30))
    assert [(c["quantity"], c["proration_behavior"]) for c in recorded.calls] == [(6, "none")]


def test_a_decrease_whose_window_was_missed_goes_once_the_period_ended(
    ten_seats: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    tick(db_session, stripe_settings, gateway, _period_end(ten_seats) + dt.timedelta(hours=3))
    assert _stripe_quantity(gateway, ten_seats) == 6


def test_a_decrease_is_sent_once(
    ten_seats: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    renewal = _period_end(ten_seats) - dt.timedelta(minutes=30)
    applied = [
        tick(db_session, stripe_settings, gateway, renewal + dt.timedelta(seconds=s))
        for s in (0, 30, 60)
    ]
    assert (applied, [c.to_quantity for c in changes(db_session)]) == ([1, 0, 0], [10, 6])


def test_an_increase_still_goes_at_once_with_proration(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    recorded = Recorded(gateway)
    midway = _period_end(active) - dt.timedelta(days=5)
    report(db_session, active, 9, midway)
    tick(db_session, stripe_settings, gateway, midway)
    assert [(c["quantity"], c["proration_behavior"]) for c in recorded.calls] == [(9, None)]


def test_usage_rising_again_before_the_renewal_cancels_the_decrease(
    ten_seats: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    renewal = _period_end(ten_seats) - dt.timedelta(minutes=30)
    report(db_session, ten_seats, 10, renewal - dt.timedelta(hours=2))
    tick(db_session, stripe_settings, gateway, renewal)
    assert _stripe_quantity(gateway, ten_seats) == 10


def test_the_seats_view_shows_the_lower_count_from_the_renewal(
    ten_seats: PaidSignup, client: TestClient[Any]
) -> None:
    sign_in(client, ten_seats.user)
    page = client.get("/console/billing/").text
    assert (
        'id="seats-billed">10<' in page,
        f'id="seats-next-period">6 from {_period_end(ten_seats):%Y-%m-%d}<' in page,
    ) == (True, True)


def test_the_seats_view_explains_when_decreases_take_effect(
    ten_seats: PaidSignup, client: TestClient[Any]
) -> None:
    sign_in(client, ten_seats.user)
    page = client.get("/console/billing/").text
    assert "removed at the renewal, with no credit" in page


def test_the_tenant_api_tells_the_seats_of_the_next_period(
    ten_seats: PaidSignup, client: TestClient[Any]
) -> None:
    sign_in(client, ten_seats.user)
    body = client.get("/api/v1/tenant/billing").json()
    assert (body["seats_billed"], body["seats_next_period"]) == (10, 6)
