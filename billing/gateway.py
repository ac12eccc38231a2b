"""Every call Backlot makes to Stripe, in one place.

Production, the tests against stripe-mock and the lifecycle tests against localstripe run
this same code; only ``stripe_api_base`` differs. Each write carries an idempotency key
derived from the operation it belongs to, so a retried task never charges twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import stripe

from billing.catalog import Plan
from control_plane.core.errors import DomainError
from control_plane.core.settings import Settings


class BillingNotConfigured(DomainError):
    status_code = 409

    def __init__(self) -> None:
        super().__init__(
            "Billing is not configured on this installation, so only the Free plan is available."
        )


class BillingUnavailable(DomainError):
    status_code = 503


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    url: str


def _object(value: Any) -> dict[str, Any]:
    """A Stripe object as plain data: the rest of billing never holds live library objects."""
    return cast(dict[str, Any], value.to_dict()) if hasattr(value, "to_dict") else dict(value)


class StripeGateway:
    def __init__(self, settings: Settings) -> None:
        if not settings.billing_enabled:
            raise BillingNotConfigured
        base = {"api": settings.stripe_api_base.rstrip("/")} if settings.stripe_api_base else None
        self.client = stripe.StripeClient(
            settings.stripe_api_key.get_secret_value(),
            base_addresses=cast(Any, base),
            max_network_retries=settings.stripe_max_network_retries,
        )

    # catalog

    def ensure_product(self, plan: Plan) -> tuple[str, bool]:
        """Create or update the plan's product; returns its id and whether anything changed."""
        wanted = {"name": f"Backlot {plan.name}", "metadata": {"backlot_plan": plan.key}}
        try:
            product = _object(self.client.v1.products.retrieve(plan.product_id))
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
            self.client.v1.products.create(
                params=cast(Any, {"id": plan.product_id, **wanted}),
                options={"idempotency_key": f"catalog:{plan.product_id}:create"},
            )
            return plan.product_id, True
        metadata: dict[str, Any] = product.get("metadata") or {}
        if product.get("name") == wanted["name"] and metadata.get("backlot_plan") == plan.key:
            return plan.product_id, False
        self.client.v1.products.update(plan.product_id, params=cast(Any, wanted))
        return plan.product_id, True

    def ensure_price(self, plan: Plan) -> tuple[str, bool]:
        """Create the plan's per-seat monthly price once; it never changes afterwards."""
        try:
            self.client.v1.plans.retrieve(plan.price_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
        else:
            return plan.price_id, False
        self.client.v1.plans.create(
            params=cast(
                Any,
                {
                    "id": plan.price_id,
                    "product": plan.product_id,
                    "amount": plan.seat_price_cents,
                    "currency": "usd",
                    "interval": "month",
                    "usage_type": "licensed",
                    "metadata": {"backlot_plan": plan.key, "version": str(plan.version)},
                },
            ),
            options={"idempotency_key": f"catalog:{plan.price_id}:create"},
        )
        return plan.price_id, True

    # customers and checkout

    def create_customer(self, *, organization_id: str, name: str, email: str) -> str:
        customer = self.client.v1.customers.create(
            params={
                "name": name,
                "email": email,
                "metadata": {"backlot_organization_id": organization_id},
            },
            options={"idempotency_key": f"customer:{organization_id}"},
        )
        return customer.id

    def create_checkout_session(
        self,
        *,
        customer_id: str,
        organization_id: str,
        plan: Plan,
        quantity: int,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        session = self.client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": organization_id,
                "line_items": [{"price": plan.price_id, "quantity": quantity}],
                "subscription_data": {
                    "metadata": {"backlot_organization_id": organization_id, "plan": plan.key}
                },
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
            options={"idempotency_key": idempotency_key},
        )
        return CheckoutSession(id=session.id, url=session.url or "")

    def create_portal_session(self, *, customer_id: str, return_url: str) -> str:
        session = self.client.v1.billing_portal.sessions.create(
            params={"customer": customer_id, "return_url": return_url}
        )
        return session.url

    # subscriptions

    def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        return _object(self.client.v1.subscriptions.retrieve(subscription_id))

    def list_subscriptions(self, customer_id: str) -> list[dict[str, Any]]:
        page = self.client.v1.subscriptions.list(
            params={"customer": customer_id, "status": "all", "limit": 10}
        )
        return [_object(s) for s in page.data]

    def change_subscription(
        self,
        subscription_id: str,
        *,
        item_id: str,
        plan: Plan,
        quantity: int,
        idempotency_key: str,
        proration_behavior: Literal["none"] | None = None,
    ) -> dict[str, Any]:
        """Swap the plan and/or seat count.

        By default ``proration_behavior`` is left out: Stripe's default is
        ``create_prorations``, the policy for plan changes and seat increases. Seat decreases
        pass ``"none"``: they are sent just before the renewal and credit nothing.
        """
        params: dict[str, Any] = {
            "items": [{"id": item_id, "plan": plan.price_id, "quantity": quantity}],
            "metadata": {"plan": plan.key},
        }
        if proration_behavior is not None:
            params["proration_behavior"] = proration_behavior
        updated = self.client.v1.subscriptions.update(
            subscription_id,
            params=cast(Any, params),
            options={"idempotency_key": idempotency_key},
        )
        return _object(updated)

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
        return _object(
            self.client.v1.subscriptions.cancel(
                subscription_id, options={"idempotency_key": idempotency_key}
            )
        )

    # invoices

    def list_invoices(self, customer_id: str, limit: int = 12) -> list[dict[str, Any]]:
        page = self.client.v1.invoices.list(params={"customer": customer_id, "limit": limit})
        return [_object(i) for i in page.data]

    def retrieve_invoice(self, invoice_id: str) -> dict[str, Any]:
        return _object(self.client.v1.invoices.retrieve(invoice_id))

    def retrieve_invoice_with_lines(self, invoice_id: str) -> dict[str, Any]:
        """The invoice with every line: an invoice carries only its first lines inline."""
        invoice = self.retrieve_invoice(invoice_id)
        lines = invoice.get("lines") or {}
        if lines.get("has_more"):
            page = self.client.v1.invoices.line_items.list(invoice_id, params={"limit": 100})
            lines["data"] = [_object(line) for line in page.auto_paging_iter()]
            lines["has_more"] = False
            invoice["lines"] = lines
        return invoice

    def preview_invoice(self, customer_id: str, subscription_id: str) -> dict[str, Any]:
        return _object(
            self.client.v1.invoices.create_preview(
                params={"customer": customer_id, "subscription": subscription_id}
            )
        )

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        return _object(self.client.v1.payment_intents.retrieve(payment_intent_id))

    # add-ons: one subscription item per bought premium plugin

    def ensure_addon_price(
        self, lookup_key: str, *, name: str, amount_cents: int
    ) -> tuple[str, bool]:
        """Create the add-on's product and monthly price once, found again by the lookup key.

        Like the seat prices, the price is made through the Plans API with the lookup key as
        its id, so ``sync`` finds it by id and a retried run creates nothing twice.
        """
        try:
            self.client.v1.plans.retrieve(lookup_key)
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
        else:
            return lookup_key, False
        product_id = f"backlot_{lookup_key}"
        try:
            self.client.v1.products.retrieve(product_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
            self.client.v1.products.create(
                params=cast(
                    Any,
                    {"id": product_id, "name": name, "metadata": {"backlot_addon": lookup_key}},
                ),
                options={"idempotency_key": f"catalog:{product_id}:create"},
            )
        self.client.v1.plans.create(
            params=cast(
                Any,
                {
                    "id": lookup_key,
                    "product": product_id,
                    "amount": amount_cents,
                    "currency": "usd",
                    "interval": "month",
                    "usage_type": "licensed",
                    "metadata": {"backlot_addon": lookup_key},
                },
            ),
            options={"idempotency_key": f"catalog:{lookup_key}:create"},
        )
        return lookup_key, True

    def add_subscription_item(
        self,
        subscription_id: str,
        *,
        price_id: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Add one item to the subscription and invoice its prorated amount at once.

        ``always_invoice`` makes Stripe finalize an invoice for the proration now, so the
        payment for the add-on is attempted (and confirmable through ``invoice.paid``) today
        rather than folded into the next renewal. ``error_if_incomplete`` makes a declined
        card or a payment that needs the customer's action fail the call with nothing added,
        instead of leaving an unpaid item that would put the whole subscription past due.
        Payment methods that settle later (bank debits) leave the invoice open: the item is
        added and the add-on waits for ``invoice.paid``.
        """
        item = self.client.v1.subscription_items.create(
            params=cast(
                Any,
                {
                    "subscription": subscription_id,
                    # A price made through the Plans API answers to its id as a price too.
                    "price": price_id,
                    "quantity": 1,
                    "proration_behavior": "always_invoice",
                    "payment_behavior": "error_if_incomplete",
                    "metadata": metadata,
                },
            ),
            options={"idempotency_key": idempotency_key},
        )
        return _object(item)

    def delete_subscription_item(self, item_id: str, *, idempotency_key: str) -> None:
        """Remove an item with no credit: it is paid, and used, to the end of the period."""
        self.client.v1.subscription_items.delete(
            item_id,
            params={"proration_behavior": "none"},
            options={"idempotency_key": idempotency_key},
        )


def gateway(settings: Settings) -> StripeGateway:
    return StripeGateway(settings)
