"""Buying premium plugins: each is one add-on item on the tenant's Stripe subscription.

The marketplace needs only two things from billing, so it names them as a port; billing
implements it with its Stripe gateway. Buying adds the item and leaves the add-on ``pending``;
it entitles the tenant once billing confirms the payment. Cancelling removes the item at the
end of the paid period; the add-on entitles the tenant until then.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.errors import Conflict, NotFound, ValidationFailed
from control_plane.marketplace import audit, plans
from control_plane.marketplace.errors import PurchasesUnavailable
from control_plane.marketplace.models import AddOn, AddOnState, Plugin, Tier
from control_plane.marketplace.service import addon, now
from control_plane.tenants.models import Tenant


@dataclass(frozen=True)
class AddedItem:
    subscription_item_id: str
    # True when the payment was confirmed while adding (e.g. charged to a card on file).
    paid: bool
    current_period_end: dt.datetime | None


class PurchaseGateway(Protocol):
    def add_plugin(
        self, session: Session, tenant: Tenant, *, price_lookup_key: str, idempotency_key: str
    ) -> AddedItem: ...

    def remove_plugin_at_period_end(
        self, session: Session, tenant: Tenant, *, subscription_item_id: str, idempotency_key: str
    ) -> dt.datetime | None: ...


class UnavailablePurchaseGateway:
    """Refuses every purchase: no billing gateway is configured in this deployment."""

    def add_plugin(
        self, session: Session, tenant: Tenant, *, price_lookup_key: str, idempotency_key: str
    ) -> AddedItem:
        raise PurchasesUnavailable("premium purchases are not available yet")

    def remove_plugin_at_period_end(
        self, session: Session, tenant: Tenant, *, subscription_item_id: str, idempotency_key: str
    ) -> dt.datetime | None:
        raise PurchasesUnavailable("premium purchases are not available yet")


# Replaced by billing's implementation when the billing package provides one.
GATEWAY: PurchaseGateway = UnavailablePurchaseGateway()


def buy(
    session: Session,
    tenant: Tenant,
    plugin: Plugin,
    *,
    actor: str,
    gateway: PurchaseGateway | None = None,
) -> AddOn:
    if plugin.tier != Tier.PREMIUM or not plugin.price_lookup_key:
        raise ValidationFailed({"plugin": f"{plugin.name} is free; install it directly"})
    if plans.includes(tenant.plan, plugin.key):
        raise Conflict(f"your {tenant.plan} plan already includes {plugin.name}")
    current = addon(session, tenant, plugin)
    if current is not None and current.state in (AddOnState.PENDING, AddOnState.ACTIVE):
        raise Conflict(f"{plugin.name} is already bought ({current.state})")
    if current is None:
        current = AddOn(tenant_id=tenant.id, plugin_id=plugin.id, state=AddOnState.PENDING)
        session.add(current)
        session.flush()
    added = (gateway or GATEWAY).add_plugin(
        session,
        tenant,
        price_lookup_key=plugin.price_lookup_key,
        # One key per add-on row and attempt: a retried request adds the item once.
        idempotency_key=f"addon:{current.id}:{current.updated_at.timestamp():.0f}",
    )
    current.subscription_item_id = added.subscription_item_id
    current.current_period_end = added.current_period_end
    current.state = AddOnState.ACTIVE if added.paid else AddOnState.PENDING
    audit.record(
        session,
        tenant,
        actor=actor,
        action="plugin.purchased",
        target=plugin.key,
        details={"state": str(current.state), "item": added.subscription_item_id},
    )
    session.flush()
    return current


def confirm_payment(session: Session, tenant_id: UUID, subscription_item_id: str) -> AddOn | None:
    """Billing calls this when the invoice that carries the item is paid."""
    current = session.scalar(
        select(AddOn).where(
            AddOn.tenant_id == tenant_id, AddOn.subscription_item_id == subscription_item_id
        )
    )
    if current is None or current.state != AddOnState.PENDING:
        return current
    current.state = AddOnState.ACTIVE
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    audit.record(
        session,
        tenant,
        actor="billing",
        action="plugin.payment_confirmed",
        target=subscription_item_id,
    )
    session.flush()
    return current


def cancel(
    session: Session,
    tenant: Tenant,
    plugin: Plugin,
    *,
    actor: str,
    gateway: PurchaseGateway | None = None,
) -> AddOn:
    current = addon(session, tenant, plugin)
    if current is None or current.state not in (AddOnState.PENDING, AddOnState.ACTIVE):
        raise NotFound(f"{plugin.name} is not bought")
    assert current.subscription_item_id is not None
    period_end = (gateway or GATEWAY).remove_plugin_at_period_end(
        session,
        tenant,
        subscription_item_id=current.subscription_item_id,
        idempotency_key=f"addon-cancel:{current.id}",
    )
    if current.state == AddOnState.PENDING:
        # Never paid: nothing to run until the period end.
        current.current_period_end = now()
        current.state = AddOnState.CANCELED
    else:
        current.current_period_end = period_end or now()
        current.state = AddOnState.CANCELING
    audit.record(
        session,
        tenant,
        actor=actor,
        action="plugin.purchase_cancelled",
        target=plugin.key,
        details={"until": current.current_period_end.isoformat()},
    )
    session.flush()
    return current
