"""``backlot billing``: put the plan catalog into Stripe."""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from billing.addons import addon_prices
from billing.catalog import PLANS
from billing.gateway import StripeGateway
from control_plane.core.database import build_engine, build_session_factory, unit_of_work
from control_plane.core.logging import configure_logging
from control_plane.core.settings import Settings, load_settings
from control_plane.marketplace import service as marketplace
from control_plane.marketplace.models import Tier
from control_plane.marketplace.seed import BUILTIN


@click.group()
def billing() -> None:
    """Stripe billing."""


@billing.command()
def sync() -> None:
    """Create the plans' and premium plugins' Stripe products and prices; safe to run again."""
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
    for addon in addon_prices(_premium_plugins(settings)):
        if addon.amount_cents is None:
            click.echo(
                f"{addon.lookup_key}: no amount in billing.addons.ADDON_PRICE_CENTS; "
                "create this price in Stripe with the lookup key as its id"
            )
            continue
        _, created = gateway.ensure_addon_price(
            addon.lookup_key, name=addon.name, amount_cents=addon.amount_cents
        )
        click.echo(f"add-on {addon.lookup_key} ({'created' if created else 'unchanged'})")


def _premium_plugins(settings: Settings) -> list[tuple[str, str | None]]:
    """(name, price lookup key) of the registry's premium plugins and the built-in ones."""
    builtin = [(p.name, p.price_lookup_key) for p, _ in BUILTIN if p.tier == Tier.PREMIUM]
    engine = build_engine(settings.resolved_database_url)
    try:
        with unit_of_work(build_session_factory(engine)) as session:
            registry = [
                (p.name, p.price_lookup_key)
                for p in marketplace.search(session)
                if p.tier == Tier.PREMIUM
            ]
    except SQLAlchemyError:
        click.echo("the plugin registry is not reachable; pricing the built-in premium plugins")
        registry = []
    finally:
        engine.dispose()
    return registry + builtin
