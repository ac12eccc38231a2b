"""The Stripe webhook inbox: verify and store fast; handle later by re-fetching from Stripe."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from uuid import UUID

import stripe
import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing import addons, service
from billing.gateway import StripeGateway
from billing.models import BillingAccount, StripeEvent
from control_plane.core.errors import DomainError
from control_plane.core.settings import Settings
from control_plane.outbox import service as outbox

log = structlog.get_logger(__name__)

HANDLE_TASK = "backlot.billing.handle_event"
HANDLED_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.expired",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.trial_will_end",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
    }
)


# A paid invoice confirms the add-ons it bills (Stripe sends both for one payment).
PAID_INVOICE_TYPES = frozenset({"invoice.paid", "invoice.payment_succeeded"})


class SignatureRejected(DomainError):
    status_code = 400


def verify(settings: Settings, payload: bytes, header: str | None) -> dict[str, Any]:
    """The event, if one of the endpoint secrets signed this very body recently enough."""
    secrets = settings.stripe_webhook_secret_list
    if not secrets:
        raise SignatureRejected("This endpoint has no webhook secret configured.")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(
                payload, header, secret, tolerance=settings.stripe_webhook_tolerance_seconds
            )
        except stripe.SignatureVerificationError:
            continue
        try:
            event: dict[str, Any] = json.loads(payload)
        except ValueError as exc:
            raise SignatureRejected("The body is not JSON.") from exc
        if not isinstance(event, dict) or not str(event.get("id", "")).startswith("evt_"):
            raise SignatureRejected("The body is not a Stripe event.")
        return event
    raise SignatureRejected("The Stripe-Signature header does not verify.")


def _customer_of(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "customer":
        return str(obj["id"])
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return str(customer) if customer else None


def store(session: Session, event: dict[str, Any]) -> tuple[StripeEvent, bool]:
    """Insert the event into the inbox, once; a new row also queues its handling."""
    event_id = str(event["id"])
    existing = session.scalar(select(StripeEvent).where(StripeEvent.stripe_event_id == event_id))
    if existing is not None:
        return existing, False
    obj = (event.get("data") or {}).get("object") or {}
    row = StripeEvent(
        stripe_event_id=event_id,
        type=str(event.get("type", "")),
        object_id=str(obj.get("id", "")),
        customer_id=_customer_of(obj),
        stripe_created=int(event.get("created") or 0),
        payload=event,
        state="received",
        attempts=0,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # The same event delivered twice at the same moment: the other request stored it.
        raced = session.scalar(select(StripeEvent).where(StripeEvent.stripe_event_id == event_id))
        assert raced is not None
        return raced, False
    outbox.enqueue(session, HANDLE_TASK, {"event_id": event_id})
    return row, True


def _subscription_id(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "subscription":
        return str(obj["id"])
    subscription = obj.get("subscription")
    if subscription is None:
        # API versions from 2025 on move an invoice's subscription under parent.
        details = (obj.get("parent") or {}).get("subscription_details") or {}
        subscription = details.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    return str(subscription) if subscription else None


def _account_for(session: Session, row: StripeEvent, obj: dict[str, Any]) -> BillingAccount | None:
    if row.type.startswith("checkout.session.") and obj.get("client_reference_id"):
        try:
            organization_id = UUID(str(obj["client_reference_id"]))
        except ValueError:
            return None
        return service.account_of_organization(session, organization_id)
    if row.customer_id:
        return service.account_of_customer(session, row.customer_id)
    return None


def _decline_message(gateway: StripeGateway, obj: dict[str, Any]) -> str:
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    reason = ""
    if intent:
        fetched = gateway.retrieve_payment_intent(str(intent))
        reason = str((fetched.get("last_payment_error") or {}).get("message") or "")
    return (
        f"The payment did not go through: {reason}" if reason else "The payment did not go through."
    ) + " Update the card and try again."


def _park(settings: Settings, row: StripeEvent, current: dt.datetime, why: str) -> str:
    row.attempts += 1
    row.last_error = why
    if row.attempts >= settings.billing_event_max_attempts:
        row.state = "ignored"
        row.next_attempt_at = None
        log.warning("billing.event_given_up", event_id=row.stripe_event_id, reason=why)
        return "ignored"
    row.state = "parked"
    delay = settings.billing_event_retry_seconds * 2 ** min(row.attempts - 1, 6)
    row.next_attempt_at = current + dt.timedelta(seconds=delay)
    log.info("billing.event_parked", event_id=row.stripe_event_id, reason=why, retry_in=delay)
    return "parked"


def handle(session: Session, settings: Settings, gateway: StripeGateway, event_id: str) -> str:
    """Handle one stored event; the inbox row is stamped in the caller's transaction."""
    row = session.scalar(
        select(StripeEvent).where(StripeEvent.stripe_event_id == event_id).with_for_update()
    )
    if row is None:
        return "missing"
    if row.state in ("handled", "ignored"):
        return "duplicate"
    current = service.now()
    if row.type not in HANDLED_TYPES:
        row.state, row.handled_at = "handled", current
        return "not-handled-type"
    return _apply(session, settings, gateway, row, current)


def _apply(
    session: Session,
    settings: Settings,
    gateway: StripeGateway,
    row: StripeEvent,
    current: dt.datetime,
) -> str:
    obj: dict[str, Any] = (row.payload.get("data") or {}).get("object") or {}
    account = _account_for(session, row, obj)
    if account is None:
        return _park(settings, row, current, "no billing account for this customer yet")
    if row.type == "checkout.session.expired":
        service.checkout_expired(session, account, obj)
        row.state, row.handled_at, row.last_error = "handled", current, None
        return "handled"
    if row.type == "checkout.session.completed" and account.customer_id is None:
        account.customer_id = _customer_of(obj)
    subscription_id = _subscription_id(obj)
    if subscription_id is None:
        row.state, row.handled_at = "handled", current
        return "no-subscription"
    if account.subscription_id not in (None, subscription_id):
        # An event about an older subscription of this customer: the current one rules.
        subscription_id = account.subscription_id
    try:
        payment_message = (
            _decline_message(gateway, obj) if row.type == "invoice.payment_failed" else None
        )
        subscription = gateway.retrieve_subscription(subscription_id)
        # Re-fetched, like the subscription: the event's copy may be older than Stripe's.
        paid_invoice = (
            gateway.retrieve_invoice_with_lines(str(obj["id"]))
            if row.type in PAID_INVOICE_TYPES and obj.get("id")
            else None
        )
    except stripe.InvalidRequestError as exc:
        # Stripe refuses (the object is gone, or the key lost access): retrying now changes
        # nothing, so the event waits and is tried again later instead of failing the task.
        return _park(settings, row, current, f"Stripe refused the re-fetch: {exc.code or 'error'}")
    service.apply_subscription(
        session,
        settings,
        account,
        subscription,
        actor=f"stripe:{row.stripe_event_id}",
        payment_message=payment_message,
    )
    if paid_invoice is not None:
        addons.confirm_invoice(session, account.tenant_id, paid_invoice)
    if row.type == "customer.subscription.trial_will_end" and subscription.get("trial_end"):
        ends = dt.datetime.fromtimestamp(int(subscription["trial_end"]), dt.UTC)
        account.notice = f"Your trial ends on {ends:%Y-%m-%d}; add a payment method to keep going."
    row.state, row.handled_at, row.last_error = "handled", current, None
    session.flush()
    return "handled"


# A received event still unhandled after this long lost its message or its worker.
STUCK_AFTER = dt.timedelta(minutes=10)


def due_for_retry(session: Session, current: dt.datetime, limit: int = 100) -> list[str]:
    """Parked events whose retry time came, and events stuck unhandled, queued again."""
    rows = session.scalars(
        select(StripeEvent)
        .where(
            ((StripeEvent.state == "parked") & (StripeEvent.next_attempt_at <= current))
            | (
                (StripeEvent.state == "received")
                & (StripeEvent.created_at <= current - STUCK_AFTER)
            )
        )
        .order_by(StripeEvent.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.state = "received"
        outbox.enqueue(session, HANDLE_TASK, {"event_id": row.stripe_event_id})
    session.flush()
    return [r.stripe_event_id for r in rows]
