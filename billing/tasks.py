"""Billing's Celery tasks: handle inbox events, and the periodic billing tick.

Tasks take ids, never ORM objects; each runs in one unit of work, so the inbox row is
stamped handled in the same transaction as the writes its event caused.
"""

from __future__ import annotations

import random
from typing import Any

import stripe
import structlog
from celery import shared_task
from celery.signals import worker_init, worker_process_init

from billing import addons, dunning, inbox, seats, service
from billing.gateway import StripeGateway
from control_plane.core.database import unit_of_work
from control_plane.core.settings import load_settings
from control_plane.worker import current_context

log = structlog.get_logger(__name__)

TICK_TASK = "backlot.billing.tick"
RECONCILE_TASK = "backlot.billing.reconcile_accounts"


@worker_init.connect
@worker_process_init.connect
def _install_purchases(**_: Any) -> None:
    # Marketplace code run by the worker buys and cancels through the same gateway as the web.
    addons.install(load_settings())


@shared_task(name=inbox.HANDLE_TASK, bind=True, acks_late=True, max_retries=None)
def handle_event(self: Any, event_id: str) -> str:
    """Handle one Stripe event from the inbox; a Stripe outage retries it later."""
    context = current_context()
    structlog.contextvars.bind_contextvars(stripe_event_id=event_id)
    try:
        with unit_of_work(context.sessions) as session:
            outcome = inbox.handle(
                session, context.settings, StripeGateway(context.settings), event_id
            )
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        countdown = random.uniform(1, min(300, 2 ** (self.request.retries + 2)))  # noqa: S311
        log.warning("billing.event_retry", error=type(exc).__name__, countdown=countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    context.relay()
    return outcome


def run_tick() -> dict[str, int]:
    """Retry parked events, enforce dunning and sync seats; each step its own transaction."""
    context = current_context()
    settings = context.settings
    current = service.now()
    with unit_of_work(context.sessions) as session:
        retried = inbox.due_for_retry(session, current)
    with unit_of_work(context.sessions) as session:
        enforced = dunning.enforce(session, current)
    applied = 0
    if settings.billing_enabled:
        gateway = StripeGateway(settings)
        with unit_of_work(context.sessions) as session:
            seats.plan_changes(session, settings, current)
        with unit_of_work(context.sessions) as session:
            applied = seats.apply_changes(session, settings, gateway, current)
    context.relay()
    return {
        "retried": len(retried),
        "suspended": len(enforced["suspended"]),
        "deleted": len(enforced["deleted"]),
        "seat_changes": applied,
    }


@shared_task(name=TICK_TASK, ignore_result=True)
def billing_tick() -> dict[str, int]:
    return run_tick()


@shared_task(name=RECONCILE_TASK, ignore_result=True)
def reconcile_accounts() -> int:
    """Re-read every subscription from Stripe, so a missed webhook never leaves a state stale."""
    context = current_context()
    if not context.settings.billing_enabled:
        return 0
    gateway = StripeGateway(context.settings)
    with unit_of_work(context.sessions) as session:
        ids = service.accounts_with_subscriptions(session)
    for account_id in ids:
        try:
            with unit_of_work(context.sessions) as session:
                service.sync_from_stripe(session, context.settings, gateway, account_id)
        except stripe.StripeError as exc:
            log.warning(
                "billing.reconcile_failed", account_id=str(account_id), error=type(exc).__name__
            )
    context.relay()
    return len(ids)
