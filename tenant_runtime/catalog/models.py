"""Stored catalog entities and the relations computed from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenant_runtime.core.database import Base


class EntityRecord(Base):
    """One catalog entity as registered, keyed by its canonical entity ref."""

    __tablename__ = "entities"
    __table_args__ = (Index(None, "kind", "namespace", "name"),)

    uid: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Canonical `kind:namespace/name`, lower-cased: the key Backstage looks entities up by.
    entity_ref: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(63))
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    # The descriptor as registered; uid, etag and relations are added when it is served.
    body: Mapped[dict[str, Any]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    etag: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RelationRecord(Base):
    """A directed relation between two entity refs; either end may not exist (dangling)."""

    __tablename__ = "relations"
    # The primary key (source, type, target) makes each relation unique and serves the
    # per-entity lookup; the index serves filters like `relations.ownedby=group:default/x`.
    __table_args__ = (Index(None, "type", "target_ref"),)

    source_ref: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(63), primary_key=True)
    target_ref: Mapped[str] = mapped_column(String(255), primary_key=True)
