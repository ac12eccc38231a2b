"""Engines and units of work.

The control plane is synchronous on purpose: the web handlers (run in Litestar's thread
pool) and the Celery workers share one service layer and one session discipline.
Services only flush; whoever opened the unit of work commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from advanced_alchemy.base import UUIDAuditBase, orm_registry
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

Base = UUIDAuditBase
metadata = orm_registry.metadata


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Several processes (web, worker, beat) share the embedded SQLite file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def build_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def build_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
