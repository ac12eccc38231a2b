"""Billing accounts: checkout, mirroring Stripe's subscription, plan changes. Flush only."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.catalog import PLANS, Plan, plan_for_price
from billing.gateway import CheckoutSession, StripeGateway
from billing.models import BillingAccount
from control_plane.core.errors import Conflict, ValidationFailed
from control_plane.core.settings import Settings
from control_plane.identity.models import Organization
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant

log = structlog.get_logger(__name__)

ACTOR = "system:billing"
PAYING = frozenset({"active", "trialing"})
DUNNING = frozenset({"past_due", "unpaid"})
ENDED = frozenset({"canceled", "incomplete_expired"})
PAYMENT_CONDITION = "PaymentConfirmed"
CHECKOUT_EXPIRED = "CheckoutExpired"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def account_of_tenant(session: Session, tenant_id: UUID) -> BillingAccount | None:
    return session.scalar(select(BillingAccount).where(BillingAccount.tenant_id == tenant_id))


def account_of_organization(session: Session, organization_id: UUID) -> BillingAccount | None:
    return session.scalar(
        select(BillingAccount).where(BillingAccount.organization_id == organization_id)
    )


def account_of_customer(session: Session, customer_id: str) -> BillingAccount | None:
    return session.scalar(select(BillingAccount).where(BillingAccount.customer_id == customer_id))


def open_account(
    session: Session, organization: Organization, tenant: Tenant, plan: Plan
) -> BillingAccount:
    """The account of a paid signup, before any money moved; the tenant waits for payment."""
    account = BillingAccount(
        organization_id=organization.id, tenant_id=tenant.id, plan=plan.key, status="none"
    )
    session.add(account)
    tenants.set_condition(
        tenant, PAYMENT_CONDITION, False, "AwaitingPayment", "waiting for payment at Stripe"
    )
    session.flush()
    return account


def open_upgrade(
    session: Session, organization: Organization, tenant: Tenant, plan: Plan
) -> BillingAccount:
    """The account of a free portal moving to a paid plan; it keeps running meanwhile."""
    account = account_of_tenant(session, tenant.id)
    if account is None:
        account = BillingAccount(
            organization_id=organization.id, tenant_id=tenant.id, plan=plan.key, status="none"
        )
        session.add(account)
    account.plan = plan.key
    session.flush()
    return account


def start_checkout(
    session: Session,
    settings: Settings,
    gateway: StripeGateway,
    account: BillingAccount,
    *,
    organization: Organization,
    email: str,
    return_path: str = "/console/progress",
) -> CheckoutSession:
    """Create (or reuse) the Stripe customer and open a Checkout session for the plan."""
    plan = PLANS[account.plan]
    if account.customer_id is None:
        account.customer_id = gateway.create_customer(
            organization_id=str(organization.id), name=organization.name, email=email
        )
    base = settings.resolved_public_url
    attempt = 1 + int(account.checkout_session_id is not None)
    checkout = gateway.create_checkout_session(
        customer_id=account.customer_id,
        organization_id=str(organization.id),
        plan=plan,
        quantity=plan.included_seats,
        success_url=f"{base}{return_path}?checkout=complete",
        cancel_url=f"{base}{return_path}?checkout=canceled",
        idempotency_key=f"checkout:{account.id}:{attempt}:{account.updated_at.timestamp():.0f}",
    )
    account.checkout_session_id = checkout.id
    account.checkout_url = checkout.url
    tenant = tenants.get_tenant(session, account.tenant_id)
    payment = tenant.condition(PAYMENT_CONDITION)
    if payment is not None and payment["reason"] == CHECKOUT_EXPIRED:
        account.payment_message = None
        tenants.set_condition(
            tenant, PAYMENT_CONDITION, False, "AwaitingPayment", "waiting for payment at Stripe"
        )
    session.flush()
    return checkout


def checkout_expired(session: Session, account: BillingAccount, checkout: dict[str, Any]) -> bool:
    """A Checkout session ran out without a payment; True when that changed anything.

    Only the account's current session counts: an older one expiring after the customer
    started again, or after they paid, changes nothing. An expired session never completes,
    so the event's own object is enough here and nothing is re-fetched.
    """
    if checkout.get("id") != account.checkout_session_id or account.subscription_id is not None:
        return False
    tenant = tenants.get_tenant(session, account.tenant_id)
    account.checkout_session_id = account.checkout_url = None
    if tenants.awaiting_payment(session, tenant):
        # A signup: the portal stays unprovisioned behind the payment gate, ready to retry.
        account.payment_message = "The payment was not completed. Nothing was charged."
        tenants.set_condition(
            tenant,
            PAYMENT_CONDITION,
            False,
            CHECKOUT_EXPIRED,
            "the payment was not completed; start the payment again",
        )
        tenants.record_event(
            session,
            tenant,
            from_state=tenant.state,
            to_state=tenant.state,
            reason=CHECKOUT_EXPIRED,
            message="the Checkout session expired without a payment",
            actor=ACTOR,
        )
    else:
        # A free portal that started an upgrade: it stays on its plan.
        account.plan = tenant.plan
        account.notice = "The upgrade was not completed. Nothing was charged."
    session.flush()
    log.info("billing.checkout_expired", tenant_id=str(tenant.id))
    return True


def _price_id(item: dict[str, Any]) -> str:
    price = item.get("price") or item.get("plan") or {}
    return str(price.get("id", "")) if isinstance(price, dict) else str(price)


def _item(subscription: dict[str, Any]) -> dict[str, Any]:
    """The seat item: bought plugins add items of their own next to it."""
    items: list[dict[str, Any]] = (subscription.get("items") or {}).get("data") or []
    if not items:
        return {}
    return next((i for i in items if plan_for_price(_price_id(i)) is not None), items[0])


def _timestamp(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(value), dt.UTC) if value else None


def _set_plan(session: Session, account: BillingAccount, tenant: Tenant, plan: Plan) -> None:
    account.plan = plan.key
    if tenant.plan == plan.key:
        return
    organization = session.get(Organization, account.organization_id)
    if organization is not None:
        organization.plan = plan.key
    tenant.plan = plan.key
    tenant.size_tier = plan.size_tier
    tenant.generation += 1
    tenants.record_event(
        session,
        tenant,
        from_state=tenant.state,
        to_state=tenant.state,
        reason="PlanChanged",
        message=plan.name,
        actor=ACTOR,
    )
    if not tenants.awaiting_payment(session, tenant) and tenant.state not in (
        TenantState.DELETING,
        TenantState.DELETED,
    ):
        tenants.request_reconcile(session, tenant)


def apply_subscription(
    session: Session,
    settings: Settings,
    account: BillingAccount,
    subscription: dict[str, Any],
    *,
    actor: str = ACTOR,
    payment_message: str | None = None,
) -> None:
    """Mirror a freshly fetched subscription and act on what it means for the portal.

    Called with whatever Stripe holds now, so applying it twice, late or out of order
    lands in the same place.
    """
    current = now()
    item = _item(subscription)
    account.subscription_id = str(subscription["id"])
    account.subscription_item_id = str(item["id"]) if item.get("id") else None
    account.status = str(subscription.get("status", "none"))
    account.quantity = int(item.get("quantity") or subscription.get("quantity") or 0)
    account.current_period_end = _timestamp(
        subscription.get("current_period_end") or item.get("current_period_end")
    )
    account.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    account.synced_at = current
    tenant = tenants.get_tenant(session, account.tenant_id)
    plan = plan_for_price(_price_id(item))
    if plan is not None:
        _set_plan(session, account, tenant, plan)

    if account.status in PAYING:
        account.payment_message = None
        account.past_due_since = account.grace_ends_at = None
        account.canceled_at = account.retention_ends_at = None
        if account.notice and not account.notice.startswith("Your trial"):
            account.notice = None
        tenants.set_condition(tenant, PAYMENT_CONDITION, True, "Paid", "payment confirmed")
        tenants.payment_confirmed(session, tenant, actor=actor)
        if "billing" in tenant.suspension_holds:
            tenants.resume(session, tenant, holder="billing", actor=actor)
    elif account.status in DUNNING:
        if account.past_due_since is None:
            account.past_due_since = current
            account.grace_ends_at = current + dt.timedelta(seconds=settings.billing_grace_seconds)
        account.notice = (
            "A payment failed. Update your payment method before "
            f"{account.grace_ends_at:%Y-%m-%d %H:%M} UTC or the portal will be suspended."
        )
    elif account.status == "incomplete":
        account.payment_message = payment_message or account.payment_message
        tenants.set_condition(
            tenant,
            PAYMENT_CONDITION,
            False,
            "PaymentIncomplete",
            account.payment_message or "waiting for the payment to go through",
        )
    elif account.status in ENDED:
        if tenants.awaiting_payment(session, tenant):
            tenants.set_condition(
                tenant,
                PAYMENT_CONDITION,
                False,
                CHECKOUT_EXPIRED,
                "the payment was not completed; start the checkout again",
            )
        elif account.canceled_at is None:
            account.canceled_at = current
            account.retention_ends_at = current + dt.timedelta(
                seconds=settings.billing_cancel_retention_seconds
            )
            account.notice = (
                "The subscription was canceled. The portal's data is kept until "
                f"{account.retention_ends_at:%Y-%m-%d} UTC."
            )
            if tenant.state not in (TenantState.DELETING, TenantState.DELETED):
                tenants.suspend(
                    session,
                    tenant,
                    holder="billing",
                    actor=actor,
                    reason="the subscription was canceled",
                )
    session.flush()
    log.info(
        "billing.subscription_applied",
        tenant_id=str(tenant.id),
        subscription=account.subscription_id,
        status=account.status,
        quantity=account.quantity,
    )


def change_plan(
    session: Session,
    settings: Settings,
    gateway: StripeGateway,
    account: BillingAccount,
    new_plan: str,
    *,
    actor: str,
) -> None:
    """Move the subscription to another paid plan, prorated, and mirror the result."""
    target = PLANS.get(new_plan)
    if target is None or not target.paid:
        raise ValidationFailed({"plan": "Choose the Team or Enterprise plan."})
    if account.subscription_id is None or account.subscription_item_id is None:
        raise Conflict("This organization has no subscription to change yet.")
    if account.status not in PAYING:
        raise Conflict(
            f"The subscription is {account.status}; settle the payment before changing plans."
        )
    if target.key == account.plan:
        raise Conflict(f"You are already on the {target.name} plan.")
    quantity = max(account.quantity, target.billed_seats(account.active_users))
    subscription = gateway.change_subscription(
        account.subscription_id,
        item_id=account.subscription_item_id,
        plan=target,
        quantity=quantity,
        idempotency_key=f"plan:{account.id}:{target.key}:{account.updated_at.timestamp():.0f}",
    )
    apply_subscription(session, settings, account, subscription, actor=actor)


def accounts_with_subscriptions(session: Session) -> list[UUID]:
    return list(
        session.scalars(
            select(BillingAccount.id).where(BillingAccount.subscription_id.is_not(None))
        )
    )


def sync_from_stripe(
    session: Session, settings: Settings, gateway: StripeGateway, account_id: UUID
) -> None:
    """Re-read one account's subscription (the periodic repair for missed webhooks)."""
    account = session.get(BillingAccount, account_id, with_for_update=True)
    if account is not None and account.subscription_id:
        apply_subscription(
            session, settings, account, gateway.retrieve_subscription(account.subscription_id)
        )
