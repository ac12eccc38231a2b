"""Per-tenant databases and roles on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import psycopg
import pytest
from sqlalchemy.engine import make_url

from control_plane.provisioning.tenant_databases import TenantDatabases, names_for

pytestmark = [pytest.mark.integration, pytest.mark.k8s]


@pytest.fixture
def databases(postgres_admin_url: str) -> Iterator[TenantDatabases]:
    made = TenantDatabases(postgres_admin_url)
    created: list[str] = []
    original = made.ensure

    def tracking_ensure(tenant_id: str, password: str | None = None):  # type: ignore[no-untyped-def]
        created.append(tenant_id)
        return original(tenant_id, password)

    made.ensure = tracking_ensure  # type: ignore[method-assign]
    yield made
    for tenant_id in created:
        made.drop(tenant_id)


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def test_a_tenant_gets_its_own_database_and_role(databases: TenantDatabases) -> None:
    tenant_id = str(uuid4())
    database = databases.ensure(tenant_id)

    assert database.name == database.role == names_for(tenant_id)
    with _connect(database.url) as connection:
        connection.execute("CREATE TABLE entities (id int)")
        owner = connection.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        assert owner == (database.role,)
        flags = connection.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert flags == (False, False, False)


def test_a_tenant_role_cannot_open_another_tenants_database(databases: TenantDatabases) -> None:
    first = databases.ensure(str(uuid4()))
    second = databases.ensure(str(uuid4()))
    trespass = make_url(first.url).set(database=second.name).render_as_string(hide_password=False)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        _connect(trespass)


def test_ensure_is_idempotent_and_keeps_the_data(databases: TenantDatabases) -> None:
    tenant_id = str(uuid4())
    first = databases.ensure(tenant_id)
    with _connect(first.url) as connection:
        connection.execute("CREATE TABLE kept (id int)")
        connection.execute("INSERT INTO kept VALUES (7)")
    again = databases.ensure(tenant_id, password=first.password)
    assert again == first
    with _connect(again.url) as connection:
        assert connection.execute("SELECT id FROM kept").fetchall() == [(7,)]


def test_drop_removes_database_and_role(
    databases: TenantDatabases, postgres_admin_url: str
) -> None:
    tenant_id = str(uuid4())
    databases.ensure(tenant_id)
    databases.drop(tenant_id)
    assert databases.exists(tenant_id) is False
    with _connect(postgres_admin_url) as connection:
        role = connection.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (names_for(tenant_id),)
        ).fetchone()
    assert role is None
