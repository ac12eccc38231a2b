"""Premium plugins sold as add-ons: billing's side of the marketplace's purchase port.

Each bought plugin is one item on the tenant's Stripe subscription, priced by the plugin's
``price_lookup_key`` (a monthly price whose id is the lookup key, like the seat prices).

A tenant on the Free plan has no subscription to add the item to. It is refused with a
message to upgrade first, rather than sent through Checkout for the add-on alone: Checkout
would open a second subscription holding only the add-on, billed on its own cycle and outside
the seat subscription that dunning and cancellation follow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.orm import Session

from billing import service
from billing.gateway import StripeGateway
from control_plane.core.errors import Conflict, DomainError
from control_plane.core.settings import Settings
from control_plane.marketplace import purchases
from control_plane.marketplace.purchases import AddedItem
from control_plane.tenants.models import Tenant

# Monthly price of each add-on, in cents (USD), by its lookup key. ``backlot billing sync``
# creates the price of every premium plugin in the registry from this table.
ADDON_PRICE_CENTS: dict[str, int] = {
    "addon_scorecards_monthly": 900,
}


class PaidPlanRequired(Conflict):
    """The tenant has no subscription to add a plugin to."""


class PaymentDeclined(DomainError):
    status_code = 402


@dataclass(frozen=True, slots=True)
class AddOnPrice:
    lookup_key: str
    name: str
    amount_cents: int | None


def addon_prices(plugins: Iterable[tuple[str, str | None]]) -> list[AddOnPrice]:
    """The add-on price of each (name, lookup key) premium plugin, de-duplicated by key."""
    seen: dict[str, AddOnPrice] = {}
    for name, lookup_key in plugins:
        if lookup_key and lookup_key not in seen:
            seen[lookup_key] = AddOnPrice(
                lookup_key, f"Backlot {name}", ADDON_PRICE_CENTS.get(lookup_key)
            )
    return list(seen.values())


def _timestamp(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(value), dt.UTC) if value else None


def _line_item_id(line: dict[str, Any]) -> str | None:
    """The subscription item an invoice line bills, in old and new API shapes."""
    if line.get("subscription_item"):
        return str(line["subscription_item"])
    details = (line.get("parent") or {}).get("subscription_item_details") or {}
    item = details.get("subscription_item")
    return str(item) if item else None


def subscription_items_of(invoice: dict[str, Any]) -> list[str]:
    """Every subscription item the invoice has a line for, in order, once each."""
    found: list[str] = []
    for line in (invoice.get("lines") or {}).get("data") or []:
        item = _line_item_id(line)
        if item and item not in found:
            found.append(item)
    return found


def _period_end(subscription: dict[str, Any], item_id: str) -> dt.datetime | None:
    """When the period already paid for ends (on the item in new API versions)."""
    for item in (subscription.get("items") or {}).get("data") or []:
        if item.get("id") == item_id and item.get("current_period_end"):
            return _timestamp(item["current_period_end"])
    return _timestamp(subscription.get("current_period_end"))


class StripePurchaseGateway:
    """``purchases.PurchaseGateway`` on the tenant's Stripe subscription."""

    def __init__(self, settings: Settings, gateway: StripeGateway | None = None) -> None:
        self.settings = settings
        self.gateway = gateway or StripeGateway(settings)

    def _subscription_of(self, session: Session, tenant: Tenant) -> str:
        account = service.account_of_tenant(session, tenant.id)
        if account is None or account.subscription_id is None:
            raise PaidPlanRequired(
                "Upgrade to a paid plan to buy plugins: the Free plan has no subscription "
                "to add them to."
            )
        if account.status not in service.PAYING:
            raise Conflict(
                f"The subscription is {account.status}; settle the payment before buying plugins."
            )
        return account.subscription_id

    def add_plugin(
        self, session: Session, tenant: Tenant, *, price_lookup_key: str, idempotency_key: str
    ) -> AddedItem:
        subscription_id = self._subscription_of(session, tenant)
        try:
            item = self.gateway.add_subscription_item(
                subscription_id,
                price_id=price_lookup_key,
                metadata={"backlot_tenant_id": str(tenant.id), "addon": price_lookup_key},
                idempotency_key=idempotency_key,
            )
        except stripe.CardError as exc:
            reason = (exc.user_message or "the card was declined").rstrip(".")
            raise PaymentDeclined(
                f"The payment did not go through: {reason}. Update the payment method and buy "
                "again."
            ) from exc
        subscription = self.gateway.retrieve_subscription(subscription_id)
        latest = subscription.get("latest_invoice")
        if isinstance(latest, dict):
            latest = latest.get("id")
        invoice = self.gateway.retrieve_invoice(str(latest)) if latest else {}
        # Paid only when Stripe says so for the invoice that bills this very item; anything
        # else (a bank debit still settling) waits for ``invoice.paid``.
        paid = invoice.get("status") == "paid" and item["id"] in subscription_items_of(invoice)
        return AddedItem(
            subscription_item_id=str(item["id"]),
            paid=paid,
            current_period_end=_period_end(subscription, str(item["id"])),
        )

    def remove_plugin_at_period_end(
        self, session: Session, tenant: Tenant, *, subscription_item_id: str, idempotency_key: str
    ) -> dt.datetime | None:
        """Delete the item now, without proration; the add-on runs to the period's end.

        Stripe has no "delete this item at period end". The alternative, a subscription
        schedule with a second phase, would own the subscription from then on and every seat
        or plan change would have to go through the schedule. Deleting with
        ``proration_behavior=none`` gives the same money outcome (no credit for the days
        left, nothing billed at renewal), and the marketplace keeps the plugin entitled until
        the period end returned here.
        """
        account = service.account_of_tenant(session, tenant.id)
        if account is None or account.subscription_id is None:
            raise PaidPlanRequired("This portal has no subscription; there is nothing to cancel.")
        subscription = self.gateway.retrieve_subscription(account.subscription_id)
        period_end = _period_end(subscription, subscription_item_id)
        try:
            self.gateway.delete_subscription_item(
                subscription_item_id, idempotency_key=idempotency_key
            )
        except stripe.InvalidRequestError as exc:
            # Already gone (a retried cancel, or removed at Stripe): the outcome is the same.
            if exc.http_status != 404:
                raise
        return period_end


def confirm_invoice(session: Session, tenant_id: Any, invoice: dict[str, Any]) -> list[str]:
    """Activate every add-on the paid invoice bills; returns the items it confirmed."""
    if invoice.get("status") != "paid":
        return []
    confirmed = []
    for item in subscription_items_of(invoice):
        if purchases.confirm_payment(session, tenant_id, item) is not None:
            confirmed.append(item)
    return confirmed


def install(settings: Settings) -> None:
    """Sell premium plugins through Stripe when billing is configured; refuse otherwise."""
    purchases.GATEWAY = (
        StripePurchaseGateway(settings)
        if settings.billing_enabled
        else purchases.UnavailablePurchaseGateway()
    )
