"""Alembic environment for a tenant runtime database.

The runtime passes its engine in `config.attributes["engine"]`; pytest-alembic passes a
connection in `config.attributes["connection"]`; `sqlalchemy.url` is the last resort.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

import tenant_runtime.auth.models
import tenant_runtime.catalog.models  # noqa: F401  (registers the catalog tables)
from tenant_runtime.core.database import metadata
from tenant_runtime.plugins.builtin import models as _plugin_tables  # noqa: F401

config = context.config


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = config.attributes.get("engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        run_with(connection)


if context.is_offline_mode():
    raise SystemExit("the tenant runtime's migrations run online only")
run_migrations_online()
