"""A database and a role per tenant on a shared PostgreSQL server.

The role owns only its own database, cannot create roles or databases, and no one but it
(and the admin) may connect to that database: a tenant's credentials open nothing else.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url


@dataclass(frozen=True, slots=True)
class TenantDatabase:
    name: str
    role: str
    password: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return (
            f"postgresql+psycopg://{self.role}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{self.name}"
        )


def names_for(tenant_id: str) -> str:
    """The database and role name of a tenant: stable, and a valid unquoted identifier."""
    return "tenant_" + tenant_id.replace("-", "").lower()


class TenantDatabases:
    def __init__(self, admin_url: str, public_host: str = "") -> None:
        url = make_url(admin_url)
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._host = public_host or (url.host or "127.0.0.1")
        self._port = url.port or 5432

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)

    def ensure(self, tenant_id: str, password: str | None = None) -> TenantDatabase:
        """Create (or repair) the tenant's role and database; set the password if given or new."""
        name = names_for(tenant_id)
        with self._connect() as connection:
            role_exists = connection.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)
            ).fetchone()
            if password is None:
                password = secrets.token_urlsafe(32)
            verb = "ALTER" if role_exists else "CREATE"
            connection.execute(
                sql.SQL(
                    "{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "CONNECTION LIMIT 50 PASSWORD {}"
                ).format(sql.SQL(verb), sql.Identifier(name), sql.Literal(password))
            )
            database_exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not database_exists:
                connection.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(name), sql.Identifier(name)
                    )
                )
            connection.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name))
            )
            connection.execute(
                sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                    sql.Identifier(name), sql.Identifier(name)
                )
            )
        return TenantDatabase(
            name=name, role=name, password=password, host=self._host, port=self._port
        )

    def exists(self, tenant_id: str) -> bool:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (names_for(tenant_id),)
            ).fetchone()
        return row is not None

    def drop(self, tenant_id: str) -> None:
        name = names_for(tenant_id)
        with self._connect() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
