"""Stored catalog entities, their relations, search rows, locations and change history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenant_runtime.core.database import Base

JSON_DOCUMENT = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class EntityRecord(Base):
    """One catalog entity as registered, keyed by its canonical entity ref."""

    __tablename__ = "entities"
    # (kind, entity_ref, uid) answers "the uids of this kind, in ref order" from the index
    # alone, without reading the wide rows that hold the bodies: filtered pages and facets
    # need just that. (kind, name, uid) is the keyset by-query pages on when ordered by name.
    # PostgreSQL also has a trigram GIN index on `name` for substring filters, made by the
    # migration alone (SQLite cannot create it).
    __table_args__ = (
        Index(None, "kind", "namespace", "name"),
        Index(None, "kind", "entity_ref", "uid"),
        Index(None, "kind", "name", "uid"),
    )

    uid: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Canonical `kind:namespace/name`, lower-cased: the key Backstage looks entities up by.
    entity_ref: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(63))
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    # The descriptor as registered; uid, etag and relations are added when it is served.
    body: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT)
    etag: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The registered location (`type:target`) that owns this ref: the first to emit it wins.
    location_key: Mapped[str | None] = mapped_column(String(2048), index=True)
    # The entity whose processing emitted this one (a Location): drives ancestry and orphans.
    parent_ref: Mapped[str | None] = mapped_column(String(255), index=True)
    # Processing errors (`status.items`), e.g. a file that could not be read.
    status_items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON_DOCUMENT)
    # Name, title, description, tags and the like: what full-text search looks in.
    search_text: Mapped[str | None] = mapped_column(Text)


class RelationRecord(Base):
    """A directed relation between two entity refs; either end may not exist (dangling).

    `origin_ref` is the entity whose descriptor implied the relation: when it changes or
    goes away, exactly its relations are replaced, as Backstage's `originating_entity_id`.
    """

    __tablename__ = "relations"
    __table_args__ = (Index(None, "type", "target_ref"), Index(None, "source_ref"))

    origin_ref: Mapped[str] = mapped_column(String(255), primary_key=True)
    source_ref: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(63), primary_key=True)
    target_ref: Mapped[str] = mapped_column(String(255), primary_key=True)


class SearchRecord(Base):
    """One flattened `key=value` pair of an entity, as Backstage's `search` table.

    Filters, facets and ordering read this table; `value` is lower-cased for matching and
    `original_value` keeps the case facets report.
    """

    __tablename__ = "entity_search"
    # The original value rides along in the indexes so facets are answered from them alone.
    # Most queries name a kind: (key, kind, value, entity_uid) finds "spec.type=service
    # among APIs" without visiting the services of other kinds, and counts a facet within
    # one kind. PostgreSQL also keeps multi-column statistics on (key, kind, value), made
    # by the migration, so the planner knows when such a combination is rare.
    __table_args__ = (
        Index(None, "key", "value", "entity_uid", postgresql_include=["original_value"]),
        Index(None, "key", "kind", "value", "entity_uid", postgresql_include=["original_value"]),
        Index(None, "entity_uid"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    entity_uid: Mapped[str] = mapped_column(
        String(36), ForeignKey("entities.uid", ondelete="CASCADE")
    )
    # The entity's kind (lower-cased), copied here: a filter or facet within one kind then
    # reads only that kind's rows. An entity's kind never changes (it is part of its ref).
    kind: Mapped[str] = mapped_column(String(63))
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[str | None] = mapped_column(String(200))
    original_value: Mapped[str | None] = mapped_column(String(200))


class FacetCountRecord(Base):
    """How many search rows of one kind have one key and original value.

    Kept by the store with every write, so facets over the whole catalog or within some
    kinds (what the catalog page asks for) are a few rows' sum, not a count of 100,000.
    Facets with any other filter count the search rows themselves.
    """

    __tablename__ = "entity_facet_counts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(63), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class LocationRecord(Base):
    """A registered location (`url:` or `file:`), read again on refresh."""

    __tablename__ = "locations"
    __table_args__ = (UniqueConstraint("type", "target"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_refresh_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class HistoryRecord(Base):
    """One change to one entity: who or which location made it, when, and the diff."""

    __tablename__ = "entity_history"
    __table_args__ = (Index(None, "entity_ref", "id"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    entity_ref: Mapped[str] = mapped_column(String(255))
    entity_uid: Mapped[str] = mapped_column(String(36))
    change: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(255))
    location_key: Mapped[str | None] = mapped_column(String(2048))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # JSON-Patch-like operations from the previous body to the new one.
    diff: Mapped[list[dict[str, Any]]] = mapped_column(JSON_DOCUMENT)
