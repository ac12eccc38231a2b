"""Seats: usage reports from the runtimes, the seat ledger, and the debounced sync to Stripe."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing import service
from billing.catalog import PLANS
from billing.gateway import StripeGateway
from billing.models import BillingAccount, SeatChange, UsageReport
from control_plane.core.settings import Settings

log = structlog.get_logger(__name__)

SEAT_STATUSES = ("active", "trialing", "past_due")
# Seat decreases wait for the renewal: they are sent this long before the period ends, with no
# proration, so the customer keeps the seats paid for and the renewal invoice bills fewer. The
# billing tick runs every few seconds to minutes, so it comes round many times in this window.
# A decrease whose window was missed goes at once while the mirror still shows the ended period;
# once the renewal is mirrored it waits for the next one, as the new period is already paid.
DECREASE_LEAD = dt.timedelta(hours=1)


def decrease_due_at(account: BillingAccount) -> dt.datetime | None:
    """When a lower seat count may reach Stripe; None when no period is known (at once)."""
    if account.current_period_end is None:
        return None
    return account.current_period_end - DECREASE_LEAD


def seats_next_period(account: BillingAccount) -> int:
    """The seats the next period will bill if usage stays as it is now."""
    return PLANS[account.plan].billed_seats(account.active_users)


def record_usage(
    session: Session,
    *,
    tenant_id: UUID,
    period: str,
    active_users: int,
    provisioned_users: int,
    reported_at: dt.datetime,
) -> UsageReport | None:
    """Keep a runtime's usage report; the newest one decides the seats to bill.

    A report sent twice is kept once (None the second time).
    """
    if active_users < 0 or provisioned_users < 0:
        raise ValueError("user counts cannot be negative")
    report = UsageReport(
        tenant_id=tenant_id,
        period=period,
        active_users=active_users,
        provisioned_users=provisioned_users,
        reported_at=reported_at,
    )
    try:
        with session.begin_nested():
            session.add(report)
            session.flush()
    except IntegrityError:
        return None
    account = service.account_of_tenant(session, tenant_id)
    if account is not None and (
        account.usage_reported_at is None or reported_at >= account.usage_reported_at
    ):
        account.active_users = active_users
        account.provisioned_users = provisioned_users
        account.usage_reported_at = reported_at
    session.flush()
    return report


def plan_changes(session: Session, settings: Settings, current: dt.datetime) -> list[SeatChange]:
    """Write a ledger entry for each account whose billed seats should change.

    Debounced: an account gets no new entry while one is unapplied or one was applied within
    the debounce window, so a burst of logins moves the subscription once. Increases are
    planned at once; decreases only once the renewal is near (:data:`DECREASE_LEAD`).
    """
    window_start = current - dt.timedelta(seconds=settings.billing_seat_debounce_seconds)
    changes: list[SeatChange] = []
    accounts = session.scalars(
        select(BillingAccount)
        .where(
            BillingAccount.status.in_(SEAT_STATUSES),
            BillingAccount.subscription_item_id.is_not(None),
        )
        .with_for_update(skip_locked=True)
    ).all()
    for account in accounts:
        wanted = seats_next_period(account)
        if wanted == account.quantity:
            continue
        due = decrease_due_at(account)
        if wanted < account.quantity and due is not None and current < due:
            continue
        recent = session.scalar(
            select(SeatChange.id)
            .where(
                SeatChange.account_id == account.id,
                (SeatChange.applied_at > window_start) | SeatChange.applied_at.is_(None),
            )
            .limit(1)
        )
        if recent is not None:
            continue
        change = SeatChange(
            account_id=account.id,
            from_quantity=account.quantity,
            to_quantity=wanted,
            active_users=account.active_users,
        )
        session.add(change)
        changes.append(change)
    session.flush()
    return changes


def apply_changes(
    session: Session, settings: Settings, gateway: StripeGateway, current: dt.datetime
) -> int:
    """Send every unapplied ledger entry to Stripe, keyed by its id.

    A worker that dies after Stripe answered and before this commits sends the same key
    again next time, and Stripe answers with the first result instead of changing twice.
    """
    pending = session.scalars(
        select(SeatChange)
        .where(SeatChange.applied_at.is_(None))
        .order_by(SeatChange.created_at)
        .with_for_update(skip_locked=True)
    ).all()
    applied = 0
    for change in pending:
        account = session.get(BillingAccount, change.account_id)
        if (
            account is None
            or account.subscription_id is None
            or account.subscription_item_id is None
        ):
            continue
        decrease = change.to_quantity < change.from_quantity
        subscription = gateway.change_subscription(
            account.subscription_id,
            item_id=account.subscription_item_id,
            plan=PLANS[account.plan],
            quantity=change.to_quantity,
            idempotency_key=change.idempotency_key,
            # A decrease credits nothing: the seats stay paid until the period ends.
            proration_behavior="none" if decrease else None,
        )
        change.applied_at = current
        service.apply_subscription(session, settings, account, subscription)
        applied += 1
        log.info(
            "billing.seats_changed",
            tenant_id=str(account.tenant_id),
            seats=change.to_quantity,
            change_id=str(change.id),
        )
    session.flush()
    return applied
