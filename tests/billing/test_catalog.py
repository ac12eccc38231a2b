"""The plan catalog reaches Stripe once, however often it is synced (against localstripe)."""

from __future__ import annotations

import pytest

from billing.catalog import PLANS, plan_for_price
from billing.gateway import StripeGateway
from control_plane.core.settings import Settings

pytestmark = pytest.mark.stripe


def test_a_second_sync_changes_nothing(stripe_settings: Settings) -> None:
    gateway = StripeGateway(stripe_settings)
    paid = [p for p in PLANS.values() if p.paid]
    for plan in paid:
        gateway.ensure_product(plan)
        gateway.ensure_price(plan)
    again = [(gateway.ensure_product(p)[1], gateway.ensure_price(p)[1]) for p in paid]
    assert again == [(False, False)] * len(paid)


def test_a_synced_price_charges_the_catalogs_seat_price(
    stripe_settings: Settings, catalog_in_localstripe: None
) -> None:
    price = StripeGateway(stripe_settings).client.v1.plans.retrieve(PLANS["enterprise"].price_id)
    assert (price.amount, price.interval, price.product) == (3900, "month", "backlot_enterprise")


def test_a_renamed_product_is_put_back(
    stripe_settings: Settings, catalog_in_localstripe: None
) -> None:
    gateway = StripeGateway(stripe_settings)
    gateway.client.v1.products.update("backlot_team", params={"name": "Renamed by hand"})
    assert gateway.ensure_product(PLANS["team"]) == ("backlot_team", True)


def test_every_price_version_maps_back_to_its_plan() -> None:
    assert plan_for_price("backlot_team_seat_monthly_v7") is PLANS["team"]


def test_an_unknown_price_belongs_to_no_plan() -> None:
    assert plan_for_price("price_someone_elses") is None


def test_billed_seats_never_fall_below_the_included_seats() -> None:
    assert PLANS["team"].billed_seats(2) == PLANS["team"].included_seats
