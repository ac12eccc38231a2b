"""Alembic plumbing: the runtime's schema is made only by its migrations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, String, column, inspect, select, table
from sqlalchemy.exc import SQLAlchemyError

VERSION_TABLE = "alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config for the runtime's migrations, bound to `engine` when given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Date-prefixed names keep the versions folder in the order it was written.
    config.set_main_option(
        "file_template",
        "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s",
    )
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def upgrade_to_head(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "head")


def downgrade_to_base(engine: Engine) -> None:
    command.downgrade(alembic_config(engine), "base")


@dataclass(frozen=True)
class SchemaStatus:
    ready: bool
    reason: str | None = None


def schema_status(engine: Engine, expected_heads: frozenset[str]) -> SchemaStatus:
    """Whether the database answers and its schema is at the migrations' head."""
    try:
        with engine.connect() as connection:
            # Read the version table directly: a MigrationContext logs on every probe.
            current: frozenset[str] = frozenset()
            if inspect(connection).has_table(VERSION_TABLE):
                version = column("version_num", String)
                current = frozenset(
                    connection.scalars(select(version).select_from(table(VERSION_TABLE)))
                )
    except SQLAlchemyError as error:
        # The driver's message can echo connection parameters; keep only its class.
        return SchemaStatus(False, f"database unavailable ({type(error).__name__})")
    if not current:
        return SchemaStatus(False, "database schema is missing: run `migrate` first")
    if current != expected_heads:
        return SchemaStatus(
            False,
            f"database schema is at {', '.join(sorted(current))}, "
            f"expected {', '.join(sorted(expected_heads))}: run `migrate`",
        )
    return SchemaStatus(True)
