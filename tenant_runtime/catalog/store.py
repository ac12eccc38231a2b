"""Writing entities: the row, its search rows, its relations and a history entry, together.

Services flush; the caller commits. Writes go in chunks with one bulk statement per
table, so ingesting a large location costs a few statements per few hundred entities.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from tenant_runtime.catalog.bulk import insert_rows
from tenant_runtime.catalog.descriptors import EntityDescriptor
from tenant_runtime.catalog.history import body_diff
from tenant_runtime.catalog.models import (
    EntityRecord,
    HistoryRecord,
    RelationRecord,
    SearchRecord,
)
from tenant_runtime.catalog.refs import EntityRef
from tenant_runtime.catalog.relations import relations_of
from tenant_runtime.catalog.search import full_text, search_rows

CHUNK_SIZE = 500
ENTITIES = cast(Table, EntityRecord.__table__)
SEARCH = cast(Table, SearchRecord.__table__)
RELATIONS = cast(Table, RelationRecord.__table__)
HISTORY = cast(Table, HistoryRecord.__table__)


@dataclass(frozen=True)
class Conflict:
    """An entity ref emitted by a location that does not own it."""

    entity_ref: str
    owner: str | None


def entity_etag(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()


class CatalogStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def upsert(
        self,
        descriptors: Sequence[EntityDescriptor],
        *,
        location_key: str | None,
        parents: Mapping[str, str | None] | None = None,
        actor: str | None,
    ) -> list[Conflict]:
        """Create or update entities owned by `location_key`; others' entities are conflicts.

        The first location to emit a ref owns it (Backstage's "conflicting entityRef"):
        a second one is refused and told so, and the stored entity stays as it was.
        """
        conflicts: list[Conflict] = []
        parents = parents or {}
        for start in range(0, len(descriptors), CHUNK_SIZE):
            chunk = descriptors[start : start + CHUNK_SIZE]
            conflicts.extend(self._upsert_chunk(chunk, location_key, parents, actor))
        self.session.flush()
        return conflicts

    def _upsert_chunk(
        self,
        chunk: Sequence[EntityDescriptor],
        location_key: str | None,
        parents: Mapping[str, str | None],
        actor: str | None,
    ) -> list[Conflict]:
        refs = [str(d.ref) for d in chunk]
        existing = {
            record.entity_ref: record
            for record in self.session.scalars(
                select(EntityRecord).where(EntityRecord.entity_ref.in_(refs))
            )
        }
        now = datetime.now(UTC)
        conflicts: list[Conflict] = []
        written: list[tuple[str, EntityDescriptor]] = []
        new_rows: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        replaced: list[EntityRecord] = []
        for descriptor in chunk:
            ref = str(descriptor.ref)
            parent = parents.get(ref)
            record = existing.get(ref)
            if record is None:
                uid = str(uuid.uuid4())
                new_rows.append(
                    {
                        "uid": uid,
                        "entity_ref": ref,
                        "kind": descriptor.ref.kind,
                        "namespace": descriptor.ref.namespace,
                        "name": descriptor.ref.name,
                        "body": descriptor.body,
                        "etag": entity_etag(descriptor.body),
                        "created_at": now,
                        "updated_at": now,
                        "location_key": location_key,
                        "parent_ref": parent,
                        "search_text": full_text(descriptor.body),
                    }
                )
                written.append((uid, descriptor))
                history.append(
                    _history(
                        ref,
                        uid,
                        "created",
                        actor,
                        location_key,
                        now,
                        body_diff({}, descriptor.body),
                    )
                )
                continue
            if record.location_key != location_key:
                conflicts.append(Conflict(ref, record.location_key))
                continue
            if record.parent_ref != parent:
                record.parent_ref = parent
            if record.body == descriptor.body:
                continue
            diff = body_diff(record.body, descriptor.body)
            record.body = descriptor.body
            record.etag = entity_etag(descriptor.body)
            record.updated_at = now
            record.search_text = full_text(descriptor.body)
            replaced.append(record)
            written.append((record.uid, descriptor))
            history.append(_history(ref, record.uid, "updated", actor, location_key, now, diff))
        if replaced:
            self._forget_derived(replaced)
        insert_rows(self.session, ENTITIES, new_rows)
        self._write_derived(written)
        insert_rows(self.session, HISTORY, history)
        return conflicts

    def _forget_derived(self, records: Iterable[EntityRecord]) -> None:
        records = list(records)
        self.session.flush()
        self.session.execute(
            delete(SearchRecord).where(SearchRecord.entity_uid.in_([r.uid for r in records]))
        )
        self.session.execute(
            delete(RelationRecord).where(
                RelationRecord.origin_ref.in_([r.entity_ref for r in records])
            )
        )

    def _write_derived(self, written: Sequence[tuple[str, EntityDescriptor]]) -> None:
        search: list[dict[str, Any]] = []
        relations: set[tuple[str, str, str, str]] = set()
        for uid, descriptor in written:
            kind = descriptor.ref.kind
            search.append(
                {
                    "entity_uid": uid,
                    "kind": kind,
                    "key": "metadata.uid",
                    "value": uid,
                    "original_value": uid,
                }
            )
            search.extend(
                {
                    "entity_uid": uid,
                    "kind": kind,
                    "key": key,
                    "value": value,
                    "original_value": original,
                }
                for key, value, original in search_rows(descriptor.body)
            )
            origin = str(descriptor.ref)
            relations.update(
                (origin, str(r.source), r.type, str(r.target)) for r in relations_of(descriptor)
            )
        insert_rows(self.session, SEARCH, search)
        insert_rows(
            self.session,
            RELATIONS,
            [
                {"origin_ref": o, "source_ref": s, "type": t, "target_ref": g}
                for o, s, t, g in sorted(relations)
            ],
        )

    def delete(
        self, records: Sequence[EntityRecord], *, actor: str | None, location_key: str | None
    ) -> None:
        """Remove entities with their search rows and the relations they implied."""
        if not records:
            return
        now = datetime.now(UTC)
        for start in range(0, len(records), CHUNK_SIZE):
            chunk = records[start : start + CHUNK_SIZE]
            self._forget_derived(chunk)
            insert_rows(
                self.session,
                HISTORY,
                [
                    _history(
                        r.entity_ref,
                        r.uid,
                        "deleted",
                        actor,
                        location_key,
                        now,
                        body_diff(r.body, {}),
                    )
                    for r in chunk
                ],
            )
            self.session.execute(
                delete(EntityRecord).where(EntityRecord.uid.in_([r.uid for r in chunk]))
            )
        self.session.flush()

    def mark_orphans(
        self, records: Sequence[EntityRecord], *, actor: str | None, location_key: str | None
    ) -> None:
        """Keep entities no location emits any more, annotated `backstage.io/orphan: "true"`."""
        for record in records:
            metadata = record.body.get("metadata", {})
            annotations = metadata.get("annotations", {})
            if annotations.get(ORPHAN_ANNOTATION) == "true":
                continue
            body = {
                **record.body,
                "metadata": {**metadata, "annotations": {**annotations, ORPHAN_ANNOTATION: "true"}},
            }
            descriptor = EntityDescriptor(_ref_of(record), body)
            self.upsert(
                [descriptor],
                location_key=record.location_key,
                parents={record.entity_ref: record.parent_ref},
                actor=actor,
            )

    def set_status(self, entity_ref: str, items: list[dict[str, Any]] | None) -> None:
        record = self.session.scalar(
            select(EntityRecord).where(EntityRecord.entity_ref == entity_ref)
        )
        if record is not None and record.status_items != items:
            record.status_items = items or None
            self.session.flush()


ORPHAN_ANNOTATION = "backstage.io/orphan"


def _ref_of(record: EntityRecord) -> EntityRef:
    return EntityRef(record.kind, record.namespace, record.name)


def _history(  # noqa: PLR0917 - one history row, field by field
    ref: str,
    uid: str,
    change: str,
    actor: str | None,
    location_key: str | None,
    at: datetime,
    diff: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "entity_ref": ref,
        "entity_uid": uid,
        "change": change,
        "actor": actor,
        "location_key": location_key,
        "at": at,
        "diff": diff,
    }
