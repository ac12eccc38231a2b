"""Recording and reading audit entries. Services flush; callers commit."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from control_plane.audit.models import AuditEntry


class AuditLogIsAppendOnly(Exception):
    pass


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _refuse_change(*_: Any) -> None:
    # The PostgreSQL trigger refuses it too; this stops it before it reaches the database.
    raise AuditLogIsAppendOnly("audit entries are never changed or deleted")


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    tenant_id: UUID | None = None,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry to the caller's transaction: it is kept only if the action is."""
    entry = AuditEntry(
        actor=actor[:255],
        action=action[:64],
        tenant_id=tenant_id,
        target=target[:255],
        details=details or {},
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session,
    *,
    actor: str | None = None,
    tenant_id: UUID | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEntry]:
    """Newest first."""
    query = select(AuditEntry)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if tenant_id is not None:
        query = query.where(AuditEntry.tenant_id == tenant_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if since is not None:
        query = query.where(AuditEntry.created_at >= since)
    query = query.order_by(AuditEntry.created_at.desc(), AuditEntry.id).limit(limit).offset(offset)
    return list(session.scalars(query))


def document(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "at": entry.created_at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "tenant_id": str(entry.tenant_id) if entry.tenant_id else None,
        "target": entry.target,
        "details": entry.details,
    }
