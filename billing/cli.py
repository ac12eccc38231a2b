"""``backlot billing``: put the plan catalog into Stripe."""

from __future__ import annotations

import click

from billing.catalog import PLANS
from billing.gateway import StripeGateway
from control_plane.core.logging import configure_logging
from control_plane.core.settings import load_settings


@click.group()
def billing() -> None:
    """Stripe billing."""


@billing.command()
def sync() -> None:
    """Create or update the plans' Stripe products and prices; safe to run again."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    if not settings.billing_enabled:
        raise click.ClickException("set BACKLOT_STRIPE_API_KEY to sync the plan catalog")
    gateway = StripeGateway(settings)
    for plan in PLANS.values():
        if not plan.paid:
            continue
        product, product_changed = gateway.ensure_product(plan)
        price, price_changed = gateway.ensure_price(plan)
        click.echo(
            f"{plan.key:<12} product {product} ({'updated' if product_changed else 'unchanged'}), "
            f"price {price} ({'created' if price_changed else 'unchanged'})"
        )
