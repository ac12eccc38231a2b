"""Alembic environment: the URL comes from the settings (or the caller's config)."""

from __future__ import annotations

from typing import Any

from advanced_alchemy.types import GUID
from alembic import context
from sqlalchemy import Connection, Engine

from control_plane.core.database import build_engine, metadata
from control_plane.core.settings import load_settings
from control_plane.models import import_all

import_all()
config = context.config


def _compare_type(
    ctx: Any, _inspected: Any, _column: Any, _inspected_type: Any, metadata_type: Any
) -> bool | None:
    # SQLite has no UUID type: GUID is stored as 16-byte NUMERIC there and reflects as such.
    if isinstance(metadata_type, GUID) and ctx.dialect.name == "sqlite":
        return False
    return None


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=_compare_type,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    if isinstance(given, Engine):
        with given.begin() as connection:
            _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or load_settings().resolved_database_url
    engine = build_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=load_settings().resolved_database_url, target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
