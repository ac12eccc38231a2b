"""Every Stripe call Backlot makes, sent to Stripe's official stripe-mock.

stripe-mock validates each request against Stripe's OpenAPI specification and answers with
a fixture; an unknown or malformed parameter is a 400 there, as it would be at Stripe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from billing.catalog import PLANS
from billing.gateway import StripeGateway
from control_plane.cli import main
from control_plane.core.settings import Settings

pytestmark = pytest.mark.stripe

TEAM = PLANS["team"]

CALLS: dict[str, Callable[[StripeGateway], Any]] = {
    "product": lambda g: g.ensure_product(TEAM),
    "price": lambda g: g.ensure_price(TEAM),
    "customer": lambda g: g.create_customer(
        organization_id="6f1c1f7e-4b0e-4c55-9a55-3f1f1f1f1f1f", name="Acme", email="a@acme.test"
    ),
    "checkout": lambda g: g.create_checkout_session(
        customer_id="cus_123",
        organization_id="6f1c1f7e-4b0e-4c55-9a55-3f1f1f1f1f1f",
        plan=TEAM,
        quantity=5,
        success_url="https://backlot.test/console/progress?checkout=complete",
        cancel_url="https://backlot.test/console/progress?checkout=canceled",
        idempotency_key="checkout:1",
    ),
    "portal": lambda g: g.create_portal_session(
        customer_id="cus_123", return_url="https://backlot.test/console/billing"
    ),
    "retrieve subscription": lambda g: g.retrieve_subscription("sub_123"),
    "list subscriptions": lambda g: g.list_subscriptions("cus_123"),
    "change subscription": lambda g: g.change_subscription(
        "sub_123", item_id="si_123", plan=PLANS["enterprise"], quantity=30, idempotency_key="k"
    ),
    "decrease seats at the renewal": lambda g: g.change_subscription(
        "sub_123",
        item_id="si_123",
        plan=PLANS["team"],
        quantity=6,
        idempotency_key="d",
        proration_behavior="none",
    ),
    "cancel subscription": lambda g: g.cancel_subscription("sub_123", idempotency_key="c"),
    "list invoices": lambda g: g.list_invoices("cus_123"),
    "retrieve invoice": lambda g: g.retrieve_invoice("in_123"),
    "preview invoice": lambda g: g.preview_invoice("cus_123", "sub_123"),
    "retrieve payment intent": lambda g: g.retrieve_payment_intent("pi_123"),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_request_matches_stripes_api(name: str, mock_settings: Settings) -> None:
    answer = CALLS[name](StripeGateway(mock_settings))
    assert answer is not None


def test_checkout_answers_with_a_hosted_page(mock_settings: Settings) -> None:
    session = CALLS["checkout"](StripeGateway(mock_settings))
    assert session.url.startswith("https://")


def test_the_catalog_sync_command_runs_against_stripe(
    mock_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKLOT_STRIPE_API_KEY", "sk_test_backlot")
    monkeypatch.setenv("BACKLOT_STRIPE_API_BASE", mock_settings.stripe_api_base)
    monkeypatch.setenv("BACKLOT_DATA_DIR", str(mock_settings.data_dir))
    result = CliRunner().invoke(main, ["billing", "sync"])
    assert result.exit_code == 0, result.output
    plans = {line.split()[0] for line in result.output.splitlines() if " product " in line}
    assert plans == {"team", "enterprise"}


def test_the_catalog_sync_command_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKLOT_STRIPE_API_KEY", raising=False)
    result = CliRunner().invoke(main, ["billing", "sync"])
    assert "BACKLOT_STRIPE_API_KEY" in result.output
