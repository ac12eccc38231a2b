"""Subscription lifecycles against localstripe: signup, plan changes, dunning, cancellation.

Stripe's events are delivered signed to the real endpoint and handled by the same function
the Celery task runs; each handler re-fetches the subscription from localstripe.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from billing import dunning, service
from billing.catalog import PLANS
from billing.gateway import StripeGateway
from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.local import LocalDriver
from control_plane.provisioning.reconciler import Reconciler
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from tests.billing.conftest import (
    PaidSignup,
    attach_card,
    checkout_completed,
    deliver,
    event,
    reconcile_operations,
    subscribe,
)

pytestmark = [pytest.mark.stripe, pytest.mark.integration]

DECLINING_CARD = "4000000000000341"


# Signup


def test_a_paid_signup_waits_for_its_payment(paid_signup: PaidSignup, db_session: Session) -> None:
    assert reconcile_operations(db_session, paid_signup.tenant) == []


def test_a_paid_signup_holds_its_tenant_pending(paid_signup: PaidSignup) -> None:
    assert paid_signup.tenant.state == TenantState.PENDING


def test_a_completed_checkout_starts_provisioning(active: PaidSignup, db_session: Session) -> None:
    assert len(reconcile_operations(db_session, active.tenant)) == 1


def test_a_completed_checkout_mirrors_the_subscription(active: PaidSignup) -> None:
    account = active.account
    assert (account.status, account.plan, account.quantity) == ("active", "team", 5)


@pytest.fixture
def driver(stripe_settings: Settings) -> Iterator[LocalDriver]:
    local = LocalDriver(stripe_settings)
    yield local
    local.stop_all()


def test_a_paid_signup_reaches_a_live_portal(
    active: PaidSignup,
    db_session: Session,
    stripe_settings: Settings,
    sessions: sessionmaker[Session],
    driver: LocalDriver,
) -> None:
    (operation,) = reconcile_operations(db_session, active.tenant)
    outcome = Reconciler(stripe_settings, sessions, driver).run(operation.id)
    db_session.expire_all()
    tenant = db_session.get(Tenant, active.tenant.id)
    assert tenant is not None
    assert (outcome.status, tenant.state) == ("ready", TenantState.ACTIVE)


def test_the_same_checkout_event_twice_provisions_once(
    active: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    assert active.account.customer_id is not None
    assert active.account.subscription_id is not None
    again = checkout_completed(
        organization_id=str(active.organization.id),
        customer_id=active.account.customer_id,
        subscription_id=active.account.subscription_id,
    )
    deliver(client, db_session, stripe_settings, gateway, again)
    assert len(reconcile_operations(db_session, active.tenant)) == 1


def test_a_declined_card_leaves_the_signup_waiting_with_the_reason(
    paid_signup: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    subscription = subscribe(paid_signup, gateway, card=DECLINING_CARD)
    invoice = gateway.retrieve_invoice(subscription["latest_invoice"])
    deliver(client, db_session, stripe_settings, gateway, event("invoice.payment_failed", invoice))
    condition = paid_signup.tenant.condition(service.PAYMENT_CONDITION)
    assert condition is not None
    assert (
        paid_signup.account.status,
        condition["status"],
        "declined" in condition["message"],
        reconcile_operations(db_session, paid_signup.tenant),
    ) == ("incomplete", "False", True, [])


def test_paying_after_a_decline_starts_provisioning(
    paid_signup: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    subscription = subscribe(paid_signup, gateway, card=DECLINING_CARD)
    invoice = gateway.retrieve_invoice(subscription["latest_invoice"])
    deliver(client, db_session, stripe_settings, gateway, event("invoice.payment_failed", invoice))
    assert paid_signup.account.customer_id is not None
    attach_card(gateway, paid_signup.account.customer_id, "4242424242424242")
    paid = gateway.client.v1.invoices.pay(invoice["id"]).to_dict()
    deliver(client, db_session, stripe_settings, gateway, event("invoice.paid", paid))
    assert (
        paid_signup.account.status,
        len(reconcile_operations(db_session, paid_signup.tenant)),
    ) == (
        "active",
        1,
    )


# Plan changes


def test_an_upgrade_reaches_stripe(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    service.change_plan(
        db_session, stripe_settings, gateway, active.account, "enterprise", actor="t"
    )
    assert active.account.subscription_id is not None
    subscription = gateway.retrieve_subscription(active.account.subscription_id)
    item = subscription["items"]["data"][0]
    assert (item["plan"]["id"], item["quantity"]) == (PLANS["enterprise"].price_id, 25)


def test_an_upgrade_resizes_the_portal(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    service.change_plan(
        db_session, stripe_settings, gateway, active.account, "enterprise", actor="t"
    )
    assert (active.tenant.plan, active.tenant.size_tier, active.organization.plan) == (
        "enterprise",
        "large",
        "enterprise",
    )


def test_a_downgrade_reaches_stripe(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    service.change_plan(
        db_session, stripe_settings, gateway, active.account, "enterprise", actor="t"
    )
    active.account.updated_at = active.account.updated_at + dt.timedelta(seconds=1)
    service.change_plan(db_session, stripe_settings, gateway, active.account, "team", actor="t")
    assert active.account.subscription_id is not None
    subscription = gateway.retrieve_subscription(active.account.subscription_id)
    assert (subscription["items"]["data"][0]["plan"]["id"], active.tenant.plan) == (
        PLANS["team"].price_id,
        "team",
    )


def test_changing_to_the_current_plan_is_refused(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    from control_plane.core.errors import Conflict  # noqa: PLC0415

    with pytest.raises(Conflict):
        service.change_plan(db_session, stripe_settings, gateway, active.account, "team", actor="t")


# Dunning


@pytest.fixture
def renewal_plan(gateway: StripeGateway) -> str:
    """localstripe never renews (its clock stands still); an interval change makes it invoice
    at once, which stands in for the renewal invoice."""
    plan_id = f"renewal_{uuid.uuid4().hex[:8]}"
    gateway.client.v1.plans.create(
        params={
            "id": plan_id,
            "product": "backlot_team",
            "amount": 18000,
            "currency": "usd",
            "interval": "year",
        }
    )
    return plan_id


def fail_renewal(
    active_: PaidSignup, gateway: StripeGateway, renewal_plan_id: str
) -> dict[str, Any]:
    """The card starts declining and the next invoice fails: Stripe marks it past_due."""
    account = active_.account
    assert account.customer_id
    assert account.subscription_id
    assert account.subscription_item_id
    attach_card(gateway, account.customer_id, DECLINING_CARD)
    gateway.client.v1.subscriptions.update(
        account.subscription_id,
        params={
            "items": [{"id": account.subscription_item_id, "plan": renewal_plan_id, "quantity": 5}]
        },
    )
    (open_invoice,) = [
        i for i in gateway.list_invoices(account.customer_id) if i["status"] == "open"
    ]
    return open_invoice


@pytest.fixture
def past_due(
    active: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
    renewal_plan: str,
) -> tuple[PaidSignup, dict[str, Any]]:
    invoice = fail_renewal(active, gateway, renewal_plan)
    deliver(client, db_session, stripe_settings, gateway, event("invoice.payment_failed", invoice))
    return active, invoice


def test_a_failed_payment_starts_the_grace_period(
    past_due: tuple[PaidSignup, dict[str, Any]], stripe_settings: Settings
) -> None:
    account = past_due[0].account
    assert account.past_due_since is not None
    assert (account.status, account.grace_ends_at) == (
        "past_due",
        account.past_due_since + dt.timedelta(seconds=stripe_settings.billing_grace_seconds),
    )


def test_the_console_warns_during_the_grace_period(
    past_due: tuple[PaidSignup, dict[str, Any]],
) -> None:
    assert "payment failed" in (past_due[0].account.notice or "")


def test_the_portal_runs_during_the_grace_period(
    past_due: tuple[PaidSignup, dict[str, Any]], db_session: Session
) -> None:
    signup_, _ = past_due
    assert signup_.account.grace_ends_at is not None
    dunning.enforce(db_session, signup_.account.grace_ends_at - dt.timedelta(seconds=1))
    assert signup_.tenant.suspended is False


def test_the_portal_is_suspended_when_the_grace_period_ends(
    past_due: tuple[PaidSignup, dict[str, Any]], db_session: Session
) -> None:
    signup_, _ = past_due
    assert signup_.account.grace_ends_at is not None
    dunning.enforce(db_session, signup_.account.grace_ends_at)
    assert (signup_.tenant.suspended, signup_.tenant.suspension_holds) == (True, ["billing"])


def test_paying_brings_a_suspended_portal_back(
    past_due: tuple[PaidSignup, dict[str, Any]],
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    signup_, invoice = past_due
    assert signup_.account.grace_ends_at is not None
    assert signup_.account.customer_id
    dunning.enforce(db_session, signup_.account.grace_ends_at)
    attach_card(gateway, signup_.account.customer_id, "4242424242424242")
    paid = gateway.client.v1.invoices.pay(invoice["id"]).to_dict()
    deliver(client, db_session, stripe_settings, gateway, event("invoice.paid", paid))
    assert (
        signup_.account.status,
        signup_.tenant.suspended,
        signup_.tenant.suspension_holds,
        signup_.account.grace_ends_at,
    ) == ("active", False, [], None)


def test_paying_does_not_lift_an_operators_suspension(
    past_due: tuple[PaidSignup, dict[str, Any]],
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    from control_plane.tenants import service as tenants  # noqa: PLC0415

    signup_, invoice = past_due
    assert signup_.account.grace_ends_at is not None
    assert signup_.account.customer_id
    dunning.enforce(db_session, signup_.account.grace_ends_at)
    tenants.suspend(db_session, signup_.tenant, holder="operator", actor="operator:ops")
    attach_card(gateway, signup_.account.customer_id, "4242424242424242")
    paid = gateway.client.v1.invoices.pay(invoice["id"]).to_dict()
    deliver(client, db_session, stripe_settings, gateway, event("invoice.paid", paid))
    assert (signup_.tenant.suspended, signup_.tenant.suspension_holds) == (True, ["operator"])


# Cancellation


@pytest.fixture
def canceled(
    active: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> PaidSignup:
    assert active.account.subscription_id is not None
    subscription = gateway.cancel_subscription(active.account.subscription_id, idempotency_key="x")
    deliver(
        client,
        db_session,
        stripe_settings,
        gateway,
        event("customer.subscription.deleted", subscription),
    )
    return active


def test_a_canceled_subscription_suspends_the_portal_and_keeps_its_data(
    canceled: PaidSignup,
) -> None:
    assert (canceled.account.status, canceled.tenant.suspended, canceled.tenant.state) == (
        "canceled",
        True,
        TenantState.PENDING,
    )


def test_a_canceled_portal_is_kept_for_the_retention_period(
    canceled: PaidSignup, db_session: Session
) -> None:
    assert canceled.account.retention_ends_at is not None
    dunning.enforce(db_session, canceled.account.retention_ends_at - dt.timedelta(seconds=1))
    assert canceled.tenant.deletion_requested_at is None


def test_a_canceled_portal_is_deprovisioned_after_the_retention_period(
    canceled: PaidSignup, db_session: Session
) -> None:
    assert canceled.account.retention_ends_at is not None
    dunning.enforce(db_session, canceled.account.retention_ends_at)
    assert canceled.tenant.state == TenantState.DELETING


# Repair


def test_an_event_about_a_subscription_stripe_no_longer_knows_is_parked(
    active: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    active.account.subscription_id = None
    body = event(
        "customer.subscription.updated",
        {"id": "sub_gone", "object": "subscription", "customer": active.account.customer_id},
    )
    assert deliver(client, db_session, stripe_settings, gateway, body) == "parked"


def test_a_missed_webhook_is_repaired_by_the_periodic_reconcile(
    active: PaidSignup, db_session: Session, stripe_settings: Settings, gateway: StripeGateway
) -> None:
    account = active.account
    assert account.subscription_id is not None
    assert account.subscription_item_id is not None
    gateway.change_subscription(
        account.subscription_id,
        item_id=account.subscription_item_id,
        plan=PLANS["team"],
        quantity=12,
        idempotency_key="changed-in-the-dashboard",
    )
    service.sync_from_stripe(db_session, stripe_settings, gateway, account.id)
    assert account.quantity == 12


def test_a_trial_ending_soon_is_announced_in_the_console(
    paid_signup: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    assert paid_signup.account.customer_id is not None
    attach_card(gateway, paid_signup.account.customer_id, "4242424242424242")
    trial_end = int((dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).timestamp())
    subscription = gateway.client.v1.subscriptions.create(
        params={
            "customer": paid_signup.account.customer_id,
            "items": [{"plan": PLANS["team"].price_id, "quantity": 5}],
            "trial_end": trial_end,
        }
    ).to_dict()
    body = event("customer.subscription.trial_will_end", subscription)
    deliver(client, db_session, stripe_settings, gateway, body)
    # localstripe never reports "trialing" (it leaves trials "incomplete"); the notice is
    # what this event is for.
    ends = dt.datetime.fromtimestamp(trial_end, dt.UTC)
    assert paid_signup.account.notice == (
        f"Your trial ends on {ends:%Y-%m-%d}; add a payment method to keep going."
    )
