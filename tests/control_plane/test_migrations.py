"""The control-plane schema is made only by migrations: one head, up and down, as the models say."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from pytest_alembic import tests as alembic_tests
from pytest_alembic.runner import MigrationContext
from sqlalchemy import Engine

from control_plane.core.database import build_engine
from control_plane.core.migrations import alembic_config as make_config
from infra.testenv import services

pytestmark = pytest.mark.migrations


@pytest.fixture(params=["postgresql", "sqlite"])
def alembic_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = build_engine(f"sqlite:///{tmp_path / 'migrations.db'}")
        yield engine
        engine.dispose()
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    url = services.create_database(admin_url, "backlot_migrations")
    engine = build_engine(url)
    yield engine
    engine.dispose()
    services.drop_database(admin_url, "backlot_migrations")


@pytest.fixture
def alembic_config(alembic_engine: Engine) -> Config:
    return make_config(alembic_engine.url.render_as_string(hide_password=False))


def test_there_is_a_single_head(alembic_runner: MigrationContext) -> None:
    alembic_tests.test_single_head_revision(alembic_runner)


def test_upgrade_from_empty_to_head(alembic_runner: MigrationContext) -> None:
    alembic_tests.test_upgrade(alembic_runner)


def test_models_match_the_migrated_schema(alembic_runner: MigrationContext) -> None:
    alembic_tests.test_model_definitions_match_ddl(alembic_runner)


def test_every_migration_goes_down_and_up_again(alembic_runner: MigrationContext) -> None:
    alembic_tests.test_up_down_consistency(alembic_runner)
