"""The runtime's one MetaData, declarative base and engine construction."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, MetaData, create_engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Constraint names must be stable for migrations to drop or alter them on both SQLite
# (batch mode recreates tables) and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata


def create_database_engine(database_url: str) -> Engine:
    """Build the sync engine for a tenant database (SQLite file or PostgreSQL)."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        # A readiness probe must answer quickly even when the server is unreachable.
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    return create_engine(url)


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def ensure_sqlite_directory(database_url: str) -> None:
    """Create the directory that will hold a SQLite database file, if any."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def redacted_url(database_url: str) -> str:
    """The URL as it may appear in logs and errors: never with its password."""
    return make_url(database_url).render_as_string(hide_password=True)
