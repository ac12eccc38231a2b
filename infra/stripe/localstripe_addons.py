"""Adding and removing items of a live subscription in localstripe, the way Stripe does.

localstripe 1.15.10 stores ``POST /v1/subscription_items`` as a loose object: it never joins
its subscription, is never invoiced, and the request is refused for ``price``,
``proration_behavior`` or ``payment_behavior`` (unknown parameters). Buying a premium plugin
is exactly that call, so this module teaches localstripe's own classes the missing part:

- ``price`` names a price made through the Plans API (its id is also the plan's id);
- the item joins the subscription's items;
- ``proration_behavior=always_invoice`` finalizes an invoice for the item now and pays it
  with the customer's default payment method, through localstripe's own invoice, payment
  intent and charge code (so a card declines, and a SEPA debit settles half a second later,
  as localstripe does everywhere else). localstripe never prorates: the line is the full
  monthly amount;
- ``payment_behavior=error_if_incomplete`` undoes the item and answers 402 when the payment
  fails or needs the customer's action, leaving the subscription as it was;
- ``DELETE /v1/subscription_items/{id}`` takes the item off its subscription too.

Stripe's request shapes for these calls are checked separately against stripe-mock.
"""

from __future__ import annotations

from typing import Any

from localstripe import resources
from localstripe.errors import UserError

PRORATIONS = ("always_invoice", "create_prorations", "none")
PAYMENT_BEHAVIORS = (
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
)
UNPAID_INTENT_STATES = ("requires_payment_method", "requires_action", "requires_confirmation")


def _create_item(
    cls: type[Any],
    price: str | None = None,
    proration_behavior: str | None = None,
    payment_behavior: str | None = None,
    **data: Any,
) -> Any:
    if proration_behavior not in (None, *PRORATIONS) or payment_behavior not in (
        None,
        *PAYMENT_BEHAVIORS,
    ):
        raise UserError(400, "Bad request")
    if price is not None:
        data["plan"] = price
    item = cls(**data)
    subscription_id = data.get("subscription")
    if subscription_id is None:
        return item
    subscription = resources.Subscription._api_retrieve(subscription_id)
    subscription.items._list.append(item)
    if proration_behavior != "always_invoice":
        return item
    status, latest = subscription.status, subscription.latest_invoice
    # Billed now: the item, and pending invoice items (prorations), as at Stripe.
    invoice = resources.Invoice(
        customer=subscription.customer, subscription=subscription.id, items=[item]
    )
    invoice._finalize()
    if invoice.status != "paid":
        resources.Invoice._api_pay_invoice(invoice.id)
    intent = (
        resources.PaymentIntent._api_retrieve(invoice.payment_intent)
        if invoice.payment_intent
        else None
    )
    if (
        payment_behavior == "error_if_incomplete"
        and intent is not None
        and intent.status in UNPAID_INTENT_STATES
    ):
        charge = intent.latest_charge
        invoice._voided = True
        subscription.items._list.remove(item)
        subscription.status, subscription.latest_invoice = status, latest
        del resources.store[f"{cls.object}:{item.id}"]
        raise UserError(
            402,
            (charge.failure_message if charge else None)
            or "This payment requires the customer's action.",
            {"code": (charge.failure_code if charge else None) or "authentication_required"},
        )
    return item


def _delete_item(cls: type[Any], id: str) -> Any:
    item = cls._api_retrieve(id)
    if item._subscription:
        subscription = resources.Subscription._api_retrieve(item._subscription)
        subscription.items._list = [i for i in subscription.items._list if i.id != id]
    return resources.StripeObject._api_delete.__func__(cls, id)  # type: ignore[attr-defined]


def install() -> None:
    resources.SubscriptionItem._api_create = classmethod(_create_item)  # type: ignore[assignment]
    resources.SubscriptionItem._api_delete = classmethod(_delete_item)  # type: ignore[assignment]
