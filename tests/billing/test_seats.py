"""Seats: usage reports feed the ledger, and each change reaches Stripe once (localstripe)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing import seats, service
from billing.gateway import StripeGateway
from billing.models import SeatChange, UsageReport
from control_plane.core.settings import Settings
from tests.billing.conftest import PaidSignup, sign_in

pytestmark = [pytest.mark.stripe, pytest.mark.integration]

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def report(db_session: Session, signup_: PaidSignup, active_users: int, at: dt.datetime) -> Any:
    return seats.record_usage(
        db_session,
        tenant_id=signup_.tenant.id,
        period=f"{at:%Y-%m}",
        active_users=active_users,
        provisioned_users=active_users + 2,
        reported_at=at,
    )


def changes(db_session: Session) -> list[SeatChange]:
    return list(db_session.scalars(select(SeatChange).order_by(SeatChange.created_at)))


def tick(db_session: Session, settings: Settings, gateway: StripeGateway, at: dt.datetime) -> int:
    seats.plan_changes(db_session, settings, at)
    return seats.apply_changes(db_session, settings, gateway, at)


def test_a_report_sent_twice_is_kept_once(active: PaidSignup, db_session: Session) -> None:
    report(db_session, active, 8, NOW)
    assert report(db_session, active, 8, NOW) is None


def test_an_older_report_does_not_overwrite_a_newer_one(
    active: PaidSignup, db_session: Session
) -> None:
    report(db_session, active, 8, NOW)
    report(db_session, active, 3, NOW - dt.timedelta(hours=1))
    assert active.account.active_users == 8


def test_every_report_is_kept_for_the_audit(active: PaidSignup, db_session: Session) -> None:
    report(db_session, active, 8, NOW)
    report(db_session, active, 3, NOW - dt.timedelta(hours=1))
    assert db_session.scalar(select(func.count()).select_from(UsageReport)) == 2


def test_more_users_than_included_seats_raise_the_quantity_at_stripe(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    report(db_session, active, 8, NOW)
    tick(db_session, stripe_settings, gateway, NOW)
    assert active.account.subscription_id is not None
    subscription = gateway.retrieve_subscription(active.account.subscription_id)
    assert (subscription["items"]["data"][0]["quantity"], active.account.quantity) == (8, 8)


def test_a_seat_change_reaches_stripe_exactly_once(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    report(db_session, active, 8, NOW)
    applied = [
        tick(db_session, stripe_settings, gateway, NOW + dt.timedelta(seconds=s)) for s in (0, 1, 2)
    ]
    assert (applied, [c.to_quantity for c in changes(db_session)]) == ([1, 0, 0], [8])


def test_a_burst_of_reports_moves_the_subscription_once_per_window(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    for minute, users in enumerate((8, 9, 10, 11)):
        at = NOW + dt.timedelta(minutes=minute)
        report(db_session, active, users, at)
        tick(db_session, stripe_settings, gateway, at)
    assert [c.to_quantity for c in changes(db_session)] == [8]


def test_the_next_window_catches_up_with_the_newest_report(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    report(db_session, active, 8, NOW)
    tick(db_session, stripe_settings, gateway, NOW)
    report(db_session, active, 11, NOW + dt.timedelta(minutes=1))
    later = NOW + dt.timedelta(seconds=stripe_settings.billing_seat_debounce_seconds + 60)
    tick(db_session, stripe_settings, gateway, later)
    assert [c.to_quantity for c in changes(db_session)] == [8, 11]


def test_fewer_users_than_included_seats_bill_the_included_seats(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    report(db_session, active, 2, NOW)
    assert tick(db_session, stripe_settings, gateway, NOW) == 0


def test_the_idempotency_key_is_the_ledger_entrys_id(
    active: PaidSignup, db_session: Session, stripe_settings: Settings
) -> None:
    report(db_session, active, 8, NOW)
    (change,) = seats.plan_changes(db_session, stripe_settings, NOW)
    assert change.idempotency_key == f"seats:{change.id}"


def test_a_change_left_unapplied_by_a_lost_worker_is_sent_again_with_the_same_key(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    report(db_session, active, 8, NOW)
    (planned,) = seats.plan_changes(db_session, stripe_settings, NOW)
    db_session.commit()
    sent: list[str] = []
    original = gateway.change_subscription

    def recording(*args: Any, **kwargs: Any) -> dict[str, Any]:
        sent.append(kwargs["idempotency_key"])
        return original(*args, **kwargs)

    gateway.change_subscription = recording  # type: ignore[method-assign]
    with db_session.begin_nested() as lost:
        seats.apply_changes(db_session, stripe_settings, gateway, NOW)
        lost.rollback()  # the worker died before its commit
    seats.apply_changes(db_session, stripe_settings, gateway, NOW)
    assert sent == [planned.idempotency_key, planned.idempotency_key]


def test_the_tenant_api_shows_seats_used_included_and_billed(
    active: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    report(db_session, active, 8, NOW)
    tick(db_session, stripe_settings, gateway, NOW)
    db_session.commit()
    sign_in(client, active.user)
    body = client.get("/api/v1/tenant/billing").json()
    assert (body["seats_used"], body["seats_included"], body["seats_billed"]) == (8, 5, 8)


def test_usage_for_a_free_portal_is_kept_without_billing(
    db_session: Session,
) -> None:
    from tests.control_plane.factories import make_tenant  # noqa: PLC0415

    _, _, tenant = make_tenant(db_session)
    seats.record_usage(
        db_session,
        tenant_id=tenant.id,
        period="2026-11",
        active_users=3,
        provisioned_users=3,
        reported_at=NOW,
    )
    assert service.account_of_tenant(db_session, tenant.id) is None
