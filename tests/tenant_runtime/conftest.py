"""Fixtures for the tenant runtime: each test gets its own SQLite tenant database.

Tests reach the constants below through fixtures, not imports, so the test tree works
whichever import mode and package layout the suite settles on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tenant_runtime.app import create_app
from tenant_runtime.core.database import create_database_engine
from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.migrate import migrate

TENANT_ID = "3f2b9c1e-0d4a-4c55-9a61-7f1e2d3c4b5a"
# Static service tokens the runtime under test accepts (BACKLOT_RUNTIME_SERVICE_TOKENS).
SERVICE_TOKEN = "catalog-tests-member-token-5d1c9a"
ADMIN_TOKEN = "catalog-tests-admin-token-8e2f7b"
VIEWER_TOKEN = "catalog-tests-viewer-token-3a6d4c"
SERVICE_TOKENS = json.dumps(
    [
        {"token": SERVICE_TOKEN, "subject": "catalog-tests"},
        {"token": ADMIN_TOKEN, "subject": "catalog-admin", "role": "admin"},
        {"token": VIEWER_TOKEN, "subject": "catalog-viewer", "role": "viewer"},
    ]
)
ORGANIZATION_NAME = "Acme Rockets"

# What the example catalog holds, written out by hand so the tests can fail.
GROUP = "group:default/platform-team"
SYSTEM = "system:default/storefront"
WEBSITE = "component:default/storefront-web"
SERVICE = "component:default/orders-service"
API = "api:default/orders-api"
DATABASE = "resource:default/orders-db"
ADA = "user:default/ada.lovelace"
GRACE = "user:default/grace.hopper"
SEED_REFS = sorted([GROUP, SYSTEM, WEBSITE, SERVICE, API, DATABASE, ADA, GRACE])

# Each spec reference as (source, type, target, reverse type).
SEED_RELATION_PAIRS = [
    (ADA, "memberOf", GROUP, "hasMember"),
    (GRACE, "memberOf", GROUP, "hasMember"),
    (SYSTEM, "ownedBy", GROUP, "ownerOf"),
    (WEBSITE, "ownedBy", GROUP, "ownerOf"),
    (WEBSITE, "partOf", SYSTEM, "hasPart"),
    (WEBSITE, "consumesApi", API, "apiConsumedBy"),
    (SERVICE, "ownedBy", GROUP, "ownerOf"),
    (SERVICE, "partOf", SYSTEM, "hasPart"),
    (SERVICE, "providesApi", API, "apiProvidedBy"),
    (SERVICE, "dependsOn", DATABASE, "dependencyOf"),
    (API, "ownedBy", GROUP, "ownerOf"),
    (API, "partOf", SYSTEM, "hasPart"),
    (DATABASE, "ownedBy", GROUP, "ownerOf"),
    (DATABASE, "partOf", SYSTEM, "hasPart"),
]


@pytest.fixture
def seed_refs() -> list[str]:
    return list(SEED_REFS)


@pytest.fixture
def seed_relation_pairs() -> list[tuple[str, str, str, str]]:
    return list(SEED_RELATION_PAIRS)


@pytest.fixture
def seed_relations() -> set[tuple[str, str, str]]:
    """Every stored relation of the seed: each pair in both directions."""
    forward = {(source, type_, target) for source, type_, target, _ in SEED_RELATION_PAIRS}
    reverse = {(target, back, source) for source, _, target, back in SEED_RELATION_PAIRS}
    return forward | reverse


@pytest.fixture
def runtime_settings(tmp_path: Path) -> RuntimeSettings:
    return RuntimeSettings(
        tenant_id=TENANT_ID,
        tenant_slug="acme-rockets",
        organization_name=ORGANIZATION_NAME,
        database_url=f"sqlite:///{tmp_path / 'db' / 'runtime.db'}",
        data_dir=tmp_path,
        service_tokens=SecretStr(SERVICE_TOKENS),
        catalog_file_roots=[tmp_path / "catalog-files"],
        catalog_refresh_interval_seconds=0,
    )


@pytest.fixture
def service_token() -> str:
    return SERVICE_TOKEN


@pytest.fixture
def admin_token() -> str:
    return ADMIN_TOKEN


@pytest.fixture
def viewer_token() -> str:
    return VIEWER_TOKEN


@pytest.fixture
def catalog_files(runtime_settings: RuntimeSettings) -> Path:
    """A directory inside the runtime's `file:` roots for tests to write catalog files to."""
    root = runtime_settings.catalog_file_roots[0]
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def migrated_settings(runtime_settings: RuntimeSettings) -> RuntimeSettings:
    migrate(runtime_settings)
    return runtime_settings


@pytest.fixture
def engine(migrated_settings: RuntimeSettings) -> Iterator[Engine]:
    engine = create_database_engine(migrated_settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


@pytest.fixture
def client(migrated_settings: RuntimeSettings) -> Iterator[TestClient[Litestar]]:
    """A client authenticated with a member's service token."""
    with TestClient(create_app(migrated_settings)) as client:
        client.headers["Authorization"] = f"Bearer {SERVICE_TOKEN}"
        yield client


@pytest.fixture
def anonymous_client(migrated_settings: RuntimeSettings) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(migrated_settings)) as client:
        yield client
