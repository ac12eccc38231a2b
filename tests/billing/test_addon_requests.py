"""The add-on calls (buying and cancelling a premium plugin) sent to Stripe's stripe-mock.

stripe-mock validates each request against Stripe's OpenAPI specification: an unknown or
malformed parameter (a wrong ``proration_behavior``, say) is a 400 there, as at Stripe.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from billing.gateway import StripeGateway
from control_plane.cli import main
from control_plane.core.settings import Settings

pytestmark = [pytest.mark.marketplace, pytest.mark.stripe]


def test_adding_an_add_on_item_matches_stripes_api(mock_settings: Settings) -> None:
    item = StripeGateway(mock_settings).add_subscription_item(
        "sub_123",
        price_id="addon_scorecards_monthly",
        metadata={"addon": "addon_scorecards_monthly"},
        idempotency_key="addon:1:1",
    )
    assert item["object"] == "subscription_item"


def test_deleting_an_add_on_item_without_proration_matches_stripes_api(
    mock_settings: Settings,
) -> None:
    StripeGateway(mock_settings).delete_subscription_item("si_123", idempotency_key="cancel:1")


def test_creating_an_add_on_price_matches_stripes_api(mock_settings: Settings) -> None:
    price, _ = StripeGateway(mock_settings).ensure_addon_price(
        "addon_scorecards_monthly", name="Backlot Scorecards", amount_cents=900
    )
    assert price == "addon_scorecards_monthly"


def test_the_sync_command_prices_the_premium_plugins(
    mock_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKLOT_STRIPE_API_KEY", "sk_test_backlot")
    monkeypatch.setenv("BACKLOT_STRIPE_API_BASE", mock_settings.stripe_api_base)
    monkeypatch.setenv("BACKLOT_DATA_DIR", str(mock_settings.data_dir))
    result = CliRunner().invoke(main, ["billing", "sync"])
    assert result.exit_code == 0, result.output
    addons = [line.split()[1] for line in result.output.splitlines() if line.startswith("add-on")]
    assert addons == ["addon_scorecards_monthly"]


def test_reading_a_paid_invoice_with_all_its_lines_matches_stripes_api(
    mock_settings: Settings,
) -> None:
    invoice = StripeGateway(mock_settings).retrieve_invoice_with_lines("in_123")
    assert invoice["object"] == "invoice"
