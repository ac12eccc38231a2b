"""The runtime's command line: `python -m tenant_runtime migrate|serve`."""

from __future__ import annotations

import sys

import click
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from tenant_runtime.catalog.descriptors import InvalidEntity
from tenant_runtime.core.logging import configure_logging
from tenant_runtime.core.settings import RuntimeSettings, load_settings

EXIT_ALREADY_RUNNING = 3


def _settings() -> RuntimeSettings:
    try:
        settings = load_settings()
    except ValidationError as error:
        problems = "; ".join(
            f"BACKLOT_RUNTIME_{'_'.join(str(part) for part in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        raise click.ClickException(f"invalid runtime settings: {problems}") from error
    configure_logging(settings)
    return settings


@click.group()
def cli() -> None:
    """Backlot tenant runtime: one organization's developer portal."""


@cli.command("migrate")
def migrate_command() -> None:
    """Upgrade the tenant database to the latest schema and seed an empty catalog."""
    # Imported here so `migrate`, which runs before every start, skips the web stack.
    from tenant_runtime.migrate import migrate  # noqa: PLC0415

    settings = _settings()
    try:
        migrate(settings)
    except (SQLAlchemyError, CommandError, InvalidEntity, OSError) as error:
        # SQLAlchemy messages can be long and multi-line; the first line names the cause.
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise click.ClickException(
            f"migration failed for tenant {settings.tenant_id}: "
            f"{type(error).__name__}: {first_line}"
        ) from error


@cli.command("serve")
def serve_command() -> None:
    """Serve the portal until SIGTERM or SIGINT (the database must be migrated first)."""
    from tenant_runtime.serve import RuntimeAlreadyRunning, serve  # noqa: PLC0415

    settings = _settings()
    try:
        code = serve(settings)
    except RuntimeAlreadyRunning as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_ALREADY_RUNNING)
    sys.exit(code)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
