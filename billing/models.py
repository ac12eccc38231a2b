"""Billing's mirror of Stripe: one account per organization, the webhook inbox, the seat ledger."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.core.database import Base


class BillingAccount(Base):
    """What Stripe holds for an organization, as last fetched, plus our dunning clock.

    Stripe is the system of record: every field named after a Stripe field is overwritten
    from a fresh ``Subscription.retrieve`` and never edited by hand.
    """

    __tablename__ = "billing_accounts"

    organization_id: Mapped[UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    plan: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    subscription_item_id: Mapped[str | None] = mapped_column(String(255))
    # Stripe's subscription status; "none" before the first checkout completes.
    status: Mapped[str] = mapped_column(String(32), default="none", index=True)
    quantity: Mapped[int] = mapped_column(default=0)
    current_period_end: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    checkout_session_id: Mapped[str | None] = mapped_column(String(255))
    checkout_url: Mapped[str | None] = mapped_column(Text)
    # Why a payment is still awaited ("the card was declined"), shown on the progress page.
    payment_message: Mapped[str | None] = mapped_column(Text)
    notice: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    # dunning and cancellation, on our clock
    past_due_since: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    grace_ends_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    canceled_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    retention_ends_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    # seats, as the runtime last reported them
    active_users: Mapped[int] = mapped_column(default=0)
    provisioned_users: Mapped[int] = mapped_column(default=0)
    usage_reported_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class StripeEvent(Base):
    """The webhook inbox: one row per Stripe event id, however often Stripe sends it."""

    __tablename__ = "billing_stripe_events"

    stripe_event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(128))
    object_id: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_created: Mapped[int] = mapped_column(default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    # received → handled, or parked (no account yet) until it is retried; ignored after too many
    state: Mapped[str] = mapped_column(String(16), default="received", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    handled_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class SeatChange(Base):
    """One change of the billed seat count: its id is the Stripe idempotency key."""

    __tablename__ = "billing_seat_changes"

    account_id: Mapped[UUID] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="CASCADE"), index=True
    )
    from_quantity: Mapped[int] = mapped_column()
    to_quantity: Mapped[int] = mapped_column()
    active_users: Mapped[int] = mapped_column()
    applied_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)

    @property
    def idempotency_key(self) -> str:
        return f"seats:{self.id}"


class UsageReport(Base):
    """A runtime's signed usage report, kept so any period's seats can be recomputed."""

    __tablename__ = "billing_usage_reports"
    __table_args__ = (UniqueConstraint("tenant_id", "period", "reported_at"),)

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    period: Mapped[str] = mapped_column(String(7))
    active_users: Mapped[int] = mapped_column()
    provisioned_users: Mapped[int] = mapped_column()
    reported_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
