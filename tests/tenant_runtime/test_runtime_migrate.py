"""`migrate`: the schema comes only from migrations, and seeding happens once."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from infra.testenv import services
from tenant_runtime.catalog.models import EntityRecord, RelationRecord
from tenant_runtime.core.database import create_database_engine, metadata
from tenant_runtime.core.schema import alembic_config, downgrade_to_base, upgrade_to_head
from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.migrate import migrate

pytestmark = pytest.mark.catalog


def stored_catalog(engine: Engine) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    with Session(engine) as session:
        entities = {
            row.entity_ref: row.uid
            for row in session.execute(select(EntityRecord.entity_ref, EntityRecord.uid))
        }
        relations = {
            (row.source_ref, row.type, row.target_ref)
            for row in session.scalars(select(RelationRecord))
        }
    return entities, relations


def test_migrate_creates_the_database_file_and_seeds_the_example_catalog(
    runtime_settings: RuntimeSettings,
    seed_refs: list[str],
    seed_relations: set[tuple[str, str, str]],
) -> None:
    seeded = migrate(runtime_settings)

    assert seeded == 8
    assert (runtime_settings.data_dir / "db" / "runtime.db").is_file()
    engine = create_database_engine(runtime_settings.database_url)
    entities, relations = stored_catalog(engine)
    engine.dispose()
    assert sorted(entities) == seed_refs
    assert relations == seed_relations


def test_migrate_twice_changes_nothing(runtime_settings: RuntimeSettings) -> None:
    migrate(runtime_settings)
    engine = create_database_engine(runtime_settings.database_url)
    before = stored_catalog(engine)

    seeded_again = migrate(runtime_settings)

    after = stored_catalog(engine)
    engine.dispose()
    assert seeded_again == 0
    assert after == before
    assert len(after[0]) == 8
    assert len(after[1]) == 28


def test_migrations_have_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()

    assert len(heads) == 1


@pytest.mark.migrations
def test_migrations_go_down_to_nothing_and_back_up(runtime_settings: RuntimeSettings) -> None:
    migrate(runtime_settings)
    engine = create_database_engine(runtime_settings.database_url)

    downgrade_to_base(engine)
    tables_at_base = set(inspect(engine).get_table_names())
    upgrade_to_head(engine)
    tables_at_head = set(inspect(engine).get_table_names())
    engine.dispose()

    assert tables_at_base == {"alembic_version"}
    assert tables_at_head == {
        "alembic_version",
        "entities",
        "relations",
        "entity_search",
        "entity_facet_counts",
        "locations",
        "entity_history",
        # Users, groups and sessions (sign-in and SCIM).
        "users",
        "user_groups",
        "user_group_members",
        "auth_sessions",
        "login_attempts",
        "used_handoff_tickets",
        "login_days",
        # The built-in plugins' data (CI runs, cost lines, TechDocs pages).
        "plugin_ci_runs",
        "plugin_cost_lines",
        "plugin_techdocs_pages",
    }


@pytest.mark.migrations
def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)

    assert differences == []


POSTGRESQL_ONLY_INDEXES = {"ix_entities_search_text_fts", "ix_entities_name_trgm"}


def not_a_postgresql_only_index(name: str | None, type_: str, _: object) -> bool:
    # The GIN indexes (full text, name trigrams) exist on PostgreSQL only and are made by
    # the migrations alone; the models do not declare them (SQLite could not create them).
    return not (type_ == "index" and name in POSTGRESQL_ONLY_INDEXES)


@pytest.fixture
def postgres_runtime_engine(postgres_admin_url: str) -> Iterator[Engine]:
    """A fresh PostgreSQL tenant database, as production runs the runtime."""
    name = f"backlot_runtime_migrations_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    engine = create_database_engine(services.create_database(postgres_admin_url, name))
    yield engine
    engine.dispose()
    services.drop_database(postgres_admin_url, name)


@pytest.mark.migrations
@pytest.mark.integration
def test_migrations_go_down_and_up_on_postgresql(postgres_runtime_engine: Engine) -> None:
    upgrade_to_head(postgres_runtime_engine)
    downgrade_to_base(postgres_runtime_engine)
    tables_at_base = set(inspect(postgres_runtime_engine).get_table_names())
    upgrade_to_head(postgres_runtime_engine)

    with postgres_runtime_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_name": not_a_postgresql_only_index}
        )
        differences = compare_metadata(context, metadata)
    assert tables_at_base == {"alembic_version"}
    assert differences == []


@pytest.mark.migrations
@pytest.mark.integration
def test_postgresql_has_the_full_text_index(postgres_runtime_engine: Engine) -> None:
    upgrade_to_head(postgres_runtime_engine)

    indexes = {i["name"] for i in inspect(postgres_runtime_engine).get_indexes("entities")}

    assert "ix_entities_search_text_fts" in indexes


@pytest.mark.migrations
@pytest.mark.integration
def test_postgresql_has_the_name_trigram_index(postgres_runtime_engine: Engine) -> None:
    upgrade_to_head(postgres_runtime_engine)

    indexes = {i["name"] for i in inspect(postgres_runtime_engine).get_indexes("entities")}

    assert "ix_entities_name_trgm" in indexes
