"""``backlot marketplace``: the plugin registry from a terminal."""

from __future__ import annotations

import click

from control_plane.core.database import build_engine, build_session_factory, unit_of_work
from control_plane.core.settings import load_settings
from control_plane.marketplace.seed import seed


@click.group()
def marketplace() -> None:
    """The plugin marketplace."""


@marketplace.command("seed")
def seed_command() -> None:
    """Add the built-in plugins and versions the registry is missing (idempotent)."""
    settings = load_settings()
    engine = build_engine(settings.resolved_database_url)
    try:
        with unit_of_work(build_session_factory(engine)) as session:
            added = seed(session)
    finally:
        engine.dispose()
    click.echo(f"marketplace seeded: {added} row(s) added")
