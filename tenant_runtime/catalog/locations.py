"""Registered locations: create (or dry-run), list, query, update, delete, refresh, analyze."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tenant_runtime.catalog.cursors import decode_cursor, encode_cursor
from tenant_runtime.catalog.errors import CatalogError, CatalogInputError, EntityConflict
from tenant_runtime.catalog.filters import Predicate, location_matches
from tenant_runtime.catalog.ingestion import (
    MANAGED_BY_ORIGIN_LOCATION,
    LocationReader,
    LocationReadError,
    generated_location_ref,
    location_key,
    process_location,
    store_location,
)
from tenant_runtime.catalog.models import EntityRecord, LocationRecord
from tenant_runtime.catalog.service import CatalogService
from tenant_runtime.catalog.store import CatalogStore
from tenant_runtime.core.settings import RuntimeSettings

DEFAULT_CATALOG_FILENAME = "catalog-info.yaml"
DEFAULT_LOCATIONS_LIMIT = 500
NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]+")


class NotFound(CatalogError):
    status_code = 404


class NotAllowed(CatalogError):
    status_code = 403


def served_location(record: LocationRecord) -> dict[str, str]:
    return {
        "id": record.id,
        "type": record.type,
        "target": record.target,
        "entityRef": generated_location_ref(record.type, record.target),
    }


class LocationService:
    def __init__(self, session: Session, settings: RuntimeSettings) -> None:
        self.session = session
        self.settings = settings
        self.reader = LocationReader(settings)

    def create(
        self,
        type_: str,
        target: str,
        *,
        presence: str = "required",
        dry_run: bool = False,
        on_conflict: str = "reject",
        actor: str | None,
    ) -> dict[str, Any]:
        """Register (and read) a location; a dry run reads it and stores nothing."""
        self.reader.check(type_, target)
        existing = self.session.scalar(
            select(LocationRecord).where(
                LocationRecord.type == type_, LocationRecord.target == target
            )
        )
        if dry_run:
            processed = process_location(self.reader, type_, target, presence)
            problems = [item["message"] for items in processed.errors.values() for item in items]
            if problems:
                raise CatalogInputError("; ".join(problems))
            return {
                "exists": existing is not None,
                "location": {"type": type_, "target": target, "id": location_key(type_, target)},
                "entities": [d.body for d in processed.entities.values()],
            }
        if self.settings.catalog_readonly:
            raise NotAllowed("This catalog is read-only: locations cannot be registered")
        if existing is not None:
            if on_conflict != "refresh":
                raise EntityConflict(f"Location {location_key(type_, target)} already exists")
            self.refresh(existing, actor=actor)
            return {"location": served_location(existing), "entities": [], "exists": True}
        now = datetime.now(UTC)
        record = LocationRecord(
            id=str(uuid.uuid4()),
            type=type_,
            target=target,
            created_at=now,
            next_refresh_at=now,
        )
        self.session.add(record)
        self.session.flush()
        self.refresh(record, actor=actor, presence=presence)
        return {"location": served_location(record), "entities": []}

    def list(self) -> list[LocationRecord]:
        return list(
            self.session.scalars(
                select(LocationRecord).order_by(LocationRecord.created_at, LocationRecord.id)
            )
        )

    def query(
        self, *, cursor: str | None, limit: int | None, predicate: Predicate | None
    ) -> dict[str, Any]:
        """`POST /locations/by-query`: locations are few, so they are matched in memory."""
        offset = 0
        if cursor is not None:
            state = decode_cursor(cursor)
            predicate, offset = state.get("query"), int(state.get("offset", 0))
        limit = DEFAULT_LOCATIONS_LIMIT if limit is None else limit
        if limit < 0:
            raise CatalogInputError("limit must not be negative")
        matching = [
            served
            for served in (served_location(r) for r in self.list())
            if location_matches(served, predicate)
        ]
        page = matching[offset : offset + limit]
        info: dict[str, str] = {}
        if offset + limit < len(matching):
            info["nextCursor"] = encode_cursor({"query": predicate, "offset": offset + limit})
        return {"items": page, "totalItems": len(matching), "pageInfo": info}

    def get(self, location_id: str) -> LocationRecord:
        record = self.session.get(LocationRecord, location_id)
        if record is None:
            raise NotFound(f"Found no location with ID {location_id}")
        return record

    def delete(self, location_id: str, *, actor: str | None) -> None:
        """Unregister a location and every entity only it emitted."""
        if self.settings.catalog_readonly:
            raise NotAllowed("This catalog is read-only: locations cannot be deleted")
        record = self.get(location_id)
        self._forget_entities(record, actor=actor)
        self.session.delete(record)
        self.session.flush()

    def update(
        self, location_id: str, type_: str, target: str, *, actor: str | None
    ) -> LocationRecord:
        record = self.get(location_id)
        self.reader.check(type_, target)
        clash = self.session.scalar(
            select(LocationRecord).where(
                LocationRecord.type == type_,
                LocationRecord.target == target,
                LocationRecord.id != location_id,
            )
        )
        if clash is not None:
            raise EntityConflict(f"Location {location_key(type_, target)} already exists")
        self._forget_entities(record, actor=actor)
        record.type, record.target = type_, target
        self.session.flush()
        self.refresh(record, actor=actor)
        return record

    def _forget_entities(self, record: LocationRecord, *, actor: str | None) -> None:
        key = location_key(record.type, record.target)
        owned = self.session.scalars(
            select(EntityRecord).where(EntityRecord.location_key == key)
        ).all()
        CatalogStore(self.session).delete(list(owned), actor=actor, location_key=key)

    def by_entity(self, entity_ref: str) -> LocationRecord:
        record = CatalogService(self.session).record_by_ref(entity_ref)
        if record is None:
            raise NotFound(f"No entity named {entity_ref} found")
        origin = (
            record.body.get("metadata", {}).get("annotations", {}).get(MANAGED_BY_ORIGIN_LOCATION)
        )
        if not isinstance(origin, str) or ":" not in origin:
            raise NotFound(f"Entity {entity_ref} has no origin location")
        type_, _, target = origin.partition(":")
        location = self.session.scalar(
            select(LocationRecord).where(
                LocationRecord.type == type_, LocationRecord.target == target
            )
        )
        if location is None:
            raise NotFound(f"Found no location {origin}")
        return location

    def refresh(
        self, record: LocationRecord, *, actor: str | None, presence: str = "required"
    ) -> None:
        """Read the location again and store what it emits now."""
        processed = process_location(self.reader, record.type, record.target, presence)
        store_location(
            self.session,
            processed,
            actor=actor,
            orphan_strategy=self.settings.catalog_orphan_strategy,
        )
        now = datetime.now(UTC)
        record.refreshed_at = now
        record.next_refresh_at = now + timedelta(
            seconds=self.settings.catalog_refresh_interval_seconds or 0
        )
        self.session.flush()

    def refresh_entity(self, entity_ref: str, *, actor: str | None) -> None:
        """Re-read the location that owns the entity (Backstage: its nearest location)."""
        record = CatalogService(self.session).record_by_ref(entity_ref)
        if record is None:
            raise NotFound(f"No entity named {entity_ref} found")
        if record.location_key is None:
            return
        type_, _, target = record.location_key.partition(":")
        location = self.session.scalar(
            select(LocationRecord).where(
                LocationRecord.type == type_, LocationRecord.target == target
            )
        )
        if location is not None:
            self.refresh(location, actor=actor)

    def claim_due(self, now: datetime) -> LocationRecord | None:
        """Take the next location due for its periodic refresh, so only one worker reads it."""
        for record in self.session.scalars(
            select(LocationRecord)
            .where(LocationRecord.next_refresh_at <= now)
            .order_by(LocationRecord.next_refresh_at)
            .limit(5)
        ):
            claimed = self.session.execute(
                update(LocationRecord)
                .where(
                    LocationRecord.id == record.id,
                    LocationRecord.next_refresh_at == record.next_refresh_at,
                )
                .values(
                    next_refresh_at=now
                    + timedelta(seconds=self.settings.catalog_refresh_interval_seconds)
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                self.session.refresh(record)
                return record
        return None

    def analyze(self, type_: str, target: str, catalog_filename: str | None) -> dict[str, Any]:
        """What registering the target would bring in, or a Component to create there."""
        if type_ != "url" or not urlsplit(target).scheme.startswith("http"):
            raise CatalogInputError(f"The location target {target!r} must be an http(s) URL")
        self.reader.check(type_, target)
        file_url = target
        if not target.endswith((".yaml", ".yml")):
            file_url = target.rstrip("/") + "/" + (catalog_filename or DEFAULT_CATALOG_FILENAME)
        catalog = CatalogService(self.session)
        try:
            processed = process_location(self.reader, "url", file_url)
            found = [d for ref, d in processed.entities.items() if processed.parents[ref]]
            missing = any(
                item["error"]["name"] == "NotFoundError"
                for items in processed.errors.values()
                for item in items
            )
        except LocationReadError:
            found, missing = [], True
        if found:
            return {
                "existingEntityFiles": [
                    {
                        "entity": d.body,
                        "isRegistered": catalog.record_by_ref(str(d.ref)) is not None,
                        "location": {"type": "url", "target": file_url},
                    }
                    for d in found
                ],
                "generateEntities": [],
            }
        if not missing:
            raise CatalogInputError(f"{file_url} holds no valid entities")
        name = NAME_CHARACTERS.sub("-", urlsplit(target).path.rstrip("/").rsplit("/", 1)[-1])
        name = name.strip("-._")[:63] or "component"
        return {
            "existingEntityFiles": [],
            "generateEntities": [
                {
                    "entity": {
                        "apiVersion": "backstage.io/v1alpha1",
                        "kind": "Component",
                        "metadata": {"name": name, "namespace": "default"},
                        "spec": {"type": "other", "lifecycle": "unknown"},
                    },
                    "fields": [
                        {
                            "field": "spec.owner",
                            "value": None,
                            "state": "needsUserInput",
                            "description": "Entity owner: a Group or User that owns it",
                        }
                    ],
                }
            ],
        }
