"""Reading and registering catalog entities. Services flush; the caller commits."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from tenant_runtime.catalog.descriptors import EntityDescriptor, parse_descriptors
from tenant_runtime.catalog.errors import EntityConflict
from tenant_runtime.catalog.filters import FilterSet, filter_clause
from tenant_runtime.catalog.models import EntityRecord, RelationRecord
from tenant_runtime.catalog.relations import Relation, relations_of

EXAMPLE_CATALOG = Path(__file__).resolve().parent / "seed" / "example-catalog.yaml"


class CatalogService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list_entities(
        self, *, filters: Sequence[FilterSet] = (), limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Entities in Backstage shape, ordered by canonical ref as Backstage does."""
        query = (
            select(EntityRecord)
            .where(filter_clause(filters))
            .order_by(EntityRecord.entity_ref)
            .offset(offset)
            .limit(limit)
        )
        records = self.session.scalars(query).all()
        relations = self._relations_by_source([record.entity_ref for record in records])
        return [_served(record, relations.get(record.entity_ref, [])) for record in records]

    def count_entities(self) -> int:
        return self.session.scalar(select(func.count()).select_from(EntityRecord)) or 0

    def register_entities(self, descriptors: Sequence[EntityDescriptor]) -> None:
        """Store new entities and their relations; a bad or duplicate entity stores nothing."""
        relations = {relation for d in descriptors for relation in relations_of(d)}
        refs = [str(d.ref) for d in descriptors]
        taken = self.session.scalars(
            select(EntityRecord.entity_ref).where(EntityRecord.entity_ref.in_(refs))
        ).all()
        if taken:
            raise EntityConflict(f"entities already registered: {', '.join(sorted(taken))}")
        now = datetime.now(UTC)
        self.session.add_all(
            EntityRecord(
                uid=str(uuid.uuid4()),
                entity_ref=str(d.ref),
                kind=d.ref.kind,
                namespace=d.ref.namespace,
                name=d.ref.name,
                body=d.body,
                etag=_etag(d.body),
                created_at=now,
                updated_at=now,
            )
            for d in descriptors
        )
        self._add_relations(relations)
        self.session.flush()

    def seed_example_catalog(self) -> int:
        """Register the example catalog if the catalog is empty; returns how many entities."""
        if self.count_entities():
            return 0
        descriptors = parse_descriptors(
            EXAMPLE_CATALOG.read_text(encoding="utf-8"), source=EXAMPLE_CATALOG.name
        )
        self.register_entities(descriptors)
        return len(descriptors)

    def _add_relations(self, relations: set[Relation]) -> None:
        # Relations are shared: a Group's `members` and a User's `memberOf` imply the same
        # pair, and an earlier entity may already have stored the reverse of a new one.
        triples = {(str(r.source), r.type, str(r.target)) for r in relations}
        if not triples:
            return
        stored = self.session.execute(
            select(RelationRecord.source_ref, RelationRecord.type, RelationRecord.target_ref).where(
                tuple_(
                    RelationRecord.source_ref, RelationRecord.type, RelationRecord.target_ref
                ).in_(triples)
            )
        ).all()
        existing = {(row[0], row[1], row[2]) for row in stored}
        self.session.add_all(
            RelationRecord(source_ref=source, type=type_, target_ref=target)
            for source, type_, target in sorted(triples - existing)
        )

    def _relations_by_source(self, refs: Sequence[str]) -> dict[str, list[dict[str, str]]]:
        rows = self.session.scalars(
            select(RelationRecord)
            .where(RelationRecord.source_ref.in_(refs))
            .order_by(RelationRecord.type, RelationRecord.target_ref)
        ).all()
        by_source: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            by_source.setdefault(row.source_ref, []).append(
                {"type": row.type, "targetRef": row.target_ref}
            )
        return by_source


def _served(record: EntityRecord, relations: list[dict[str, str]]) -> dict[str, Any]:
    metadata = {**record.body["metadata"], "uid": record.uid, "etag": record.etag}
    return {**record.body, "metadata": metadata, "relations": relations}


def _etag(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()
