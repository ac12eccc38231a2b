"""Bulk inserts: COPY on PostgreSQL, executemany elsewhere (the embedded SQLite default).

Ingesting a large location writes tens of rows per entity (search rows, relations,
history); row-by-row INSERTs made that the slowest part of ingestion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Table, insert
from sqlalchemy.orm import Session


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (all with the same keys) into `table` within the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    raw = connection.connection.driver_connection
    assert raw is not None
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([_adapted(row[column]) for column in columns])


def _adapted(value: Any) -> Any:
    if isinstance(value, dict | list):
        return Jsonb(value)
    return value
