"""Events delivered late, twice and in any order leave the account as Stripe holds it.

One subscription goes through an upgrade, a seat change, a failed payment and its recovery
in localstripe; the events of that history (each a snapshot of its moment) are delivered
duplicated and shuffled in many orders. Handlers re-fetch the subscription, so the outcome
must always be Stripe's current state.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from billing import inbox
from billing.catalog import PLANS
from billing.gateway import StripeGateway
from control_plane.core.settings import Settings
from tests.billing.conftest import PaidSignup, attach_card, event

pytestmark = [pytest.mark.stripe, pytest.mark.integration]


@pytest.fixture
def history(active: PaidSignup, gateway: StripeGateway) -> list[dict[str, Any]]:
    """Drive one subscription through its history at Stripe; return the events it caused."""
    account = active.account
    assert account.customer_id is not None
    assert account.subscription_id is not None
    assert account.subscription_item_id is not None
    events = [
        event(
            "customer.subscription.created", gateway.retrieve_subscription(account.subscription_id)
        )
    ]
    upgraded = gateway.change_subscription(
        account.subscription_id,
        item_id=account.subscription_item_id,
        plan=PLANS["enterprise"],
        quantity=25,
        idempotency_key="upgrade",
    )
    events.append(event("customer.subscription.updated", upgraded))
    seats = gateway.change_subscription(
        account.subscription_id,
        item_id=account.subscription_item_id,
        plan=PLANS["enterprise"],
        quantity=30,
        idempotency_key="seats",
    )
    events.append(event("customer.subscription.updated", seats))
    renewal = f"renewal_{uuid.uuid4().hex[:8]}"
    gateway.client.v1.plans.create(
        params={
            "id": renewal,
            "product": "backlot_enterprise",
            "amount": 900000,
            "currency": "usd",
            "interval": "year",
        }
    )
    attach_card(gateway, account.customer_id, "4000000000000341")
    failing = gateway.client.v1.subscriptions.update(
        account.subscription_id,
        params={"items": [{"id": account.subscription_item_id, "plan": renewal, "quantity": 30}]},
    ).to_dict()
    events.append(event("customer.subscription.updated", failing))
    (open_invoice,) = [
        i for i in gateway.list_invoices(account.customer_id) if i["status"] == "open"
    ]
    events.append(event("invoice.payment_failed", open_invoice))
    attach_card(gateway, account.customer_id, "4242424242424242")
    paid = gateway.client.v1.invoices.pay(open_invoice["id"]).to_dict()
    events.append(event("invoice.paid", paid))
    back = gateway.change_subscription(
        account.subscription_id,
        item_id=account.subscription_item_id,
        plan=PLANS["enterprise"],
        quantity=30,
        idempotency_key="back",
    )
    events.append(event("customer.subscription.updated", back))
    events.append(event("customer.subscription.trial_will_end", back))
    return events


def _mirror(active: PaidSignup) -> tuple[str, str, int, str | None, bool]:
    account = active.account
    return (
        account.status,
        account.plan,
        account.quantity,
        account.subscription_id,
        account.past_due_since is None,
    )


def _at_stripe(gateway: StripeGateway, subscription_id: str) -> tuple[str, str, int, str, bool]:
    subscription = gateway.retrieve_subscription(subscription_id)
    item = subscription["items"]["data"][0]
    return (subscription["status"], "enterprise", item["quantity"], subscription["id"], True)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_order_of_any_duplicates_ends_in_stripes_state(
    data: st.DataObject,
    active: PaidSignup,
    history: list[dict[str, Any]],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    copies = data.draw(st.lists(st.integers(1, 3), min_size=len(history), max_size=len(history)))
    deliveries = [e for e, n in zip(history, copies, strict=True) for _ in range(n)]
    order = data.draw(st.permutations(deliveries))
    assert active.account.subscription_id is not None
    expected = _at_stripe(gateway, active.account.subscription_id)
    with db_session.begin_nested() as example:
        for body in order:
            inbox.store(db_session, body)
            inbox.handle(db_session, stripe_settings, gateway, body["id"])
        outcome = _mirror(active)
        example.rollback()
    assert outcome == expected
