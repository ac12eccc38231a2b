"""Change history: the diff between two versions of an entity, and reading it back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenant_runtime.catalog.models import HistoryRecord


def body_diff(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """JSON-Patch-style operations (with the old value kept) that turn `old` into `new`."""
    if isinstance(old, dict) and isinstance(new, dict):
        operations: list[dict[str, Any]] = []
        for key in sorted(old.keys() | new.keys()):
            child = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key not in new:
                operations.append({"op": "remove", "path": child, "old": old[key]})
            elif key not in old:
                operations.append({"op": "add", "path": child, "value": new[key]})
            else:
                operations.extend(body_diff(old[key], new[key], child))
        return operations
    if old == new:
        return []
    return [{"op": "replace", "path": path, "old": old, "value": new}]


def entity_history(session: Session, entity_ref: str) -> list[dict[str, Any]]:
    """Every recorded change to the entity, oldest first."""
    records = session.scalars(
        select(HistoryRecord)
        .where(HistoryRecord.entity_ref == entity_ref)
        .order_by(HistoryRecord.id)
    ).all()
    return [
        {
            "id": record.id,
            "entityRef": record.entity_ref,
            "uid": record.entity_uid,
            "change": record.change,
            "actor": record.actor,
            "location": record.location_key,
            "at": record.at.isoformat(),
            "diff": record.diff,
        }
        for record in records
    ]
