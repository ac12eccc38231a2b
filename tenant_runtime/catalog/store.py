"""Writing entities: the row, its search rows, its relations and a history entry, together.

Services flush; the caller commits. Writes go in chunks with one bulk statement per
table, so ingesting a large location costs a few statements per few hundred entities.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, text
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
# Count changes are written once this many are pending, so a 100,000-entity location does
# not hold half a million of them in memory (250 MiB at 100k).
FACET_CHANGES_PENDING = 20_000
FacetKey = tuple[str, str, str]
# One array per column, so a whole batch of count changes is one statement.
ADD_FACET_COUNTS_POSTGRESQL = text(
    "INSERT INTO entity_facet_counts (key, kind, value, count) "
    "SELECT * FROM unnest(CAST(:keys AS varchar[]), CAST(:kinds AS varchar[]), "
    "CAST(:values AS varchar[]), CAST(:counts AS integer[])) "
    "ON CONFLICT (key, kind, value) "
    "DO UPDATE SET count = entity_facet_counts.count + excluded.count"
)
ADD_FACET_COUNT = text(
    "INSERT INTO entity_facet_counts (key, kind, value, count) "
    "VALUES (:key, :kind, :value, :count) "
    "ON CONFLICT (key, kind, value) "
    "DO UPDATE SET count = entity_facet_counts.count + excluded.count"
)
DROP_EMPTY_FACET_COUNT = text(
    "DELETE FROM entity_facet_counts "
    "WHERE key = :key AND kind = :kind AND value = :value AND count <= 0"
)


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
        # Facet count changes since the last write of them, netted: replacing an entity's
        # search rows with equal ones changes nothing.
        self._facet_changes: Counter[FacetKey] = Counter()

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
            if len(self._facet_changes) >= FACET_CHANGES_PENDING:
                self._write_facet_counts()
        self._write_facet_counts()
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
        counted = self.session.execute(
            select(SearchRecord.key, SearchRecord.kind, SearchRecord.original_value, func.count())
            .where(
                SearchRecord.entity_uid.in_([r.uid for r in records]),
                SearchRecord.original_value.is_not(None),
            )
            .group_by(SearchRecord.key, SearchRecord.kind, SearchRecord.original_value)
        )
        for key, kind, value, count in counted:
            self._facet_changes[key, kind, value] -= count
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
        self._facet_changes.update(
            (row["key"], row["kind"], row["original_value"])
            for row in search
            if row["original_value"] is not None
        )
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
        self._write_facet_counts()
        self.session.flush()

    def _write_facet_counts(self) -> None:
        """Apply the netted count changes in key order.

        In key order, two writers that each write their changes at once take the rows'
        locks in the same order and cannot deadlock. A large location writes its changes
        in several goes; should two such writes deadlock, PostgreSQL fails one of them,
        and that write rolls back whole (a refresh tries again at the next interval).
        """
        changes = sorted((key, n) for key, n in self._facet_changes.items() if n)
        self._facet_changes.clear()
        if not changes:
            return
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(
                ADD_FACET_COUNTS_POSTGRESQL,
                {
                    "keys": [key for (key, _, _), _ in changes],
                    "kinds": [kind for (_, kind, _), _ in changes],
                    "values": [value for (_, _, value), _ in changes],
                    "counts": [n for _, n in changes],
                },
            )
        else:
            self.session.execute(
                ADD_FACET_COUNT,
                [{"key": k, "kind": kind, "value": v, "count": n} for (k, kind, v), n in changes],
            )
        emptied = [{"key": k, "kind": kind, "value": v} for (k, kind, v), n in changes if n < 0]
        if emptied:
            self.session.execute(DROP_EMPTY_FACET_COUNT, emptied)

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
