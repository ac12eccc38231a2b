"""Writing outbox messages and relaying them to the broker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.outbox.models import OutboxMessage

log = structlog.get_logger(__name__)

Publisher = Callable[[OutboxMessage], None]


def enqueue(session: Session, task_name: str, payload: dict[str, Any]) -> OutboxMessage:
    """Add a message to the caller's transaction; it is relayed only if that commits."""
    message = OutboxMessage(task_name=task_name, payload=payload)
    session.add(message)
    session.flush()
    return message


def relay(
    session: Session, publish: Publisher, *, ids: Iterable[UUID] | None = None, batch: int = 100
) -> int:
    """Publish unsent messages, oldest first; returns how many went out.

    Rows are locked with SKIP LOCKED so several relays never send one message twice
    at once; a crash after publish and before commit sends it again, which consumers
    tolerate (at-least-once).
    """
    query = select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(list(ids)))
    query = query.order_by(OutboxMessage.created_at).limit(batch).with_for_update(skip_locked=True)
    sent = 0
    for message in session.scalars(query):
        message.attempts += 1
        try:
            publish(message)
        except Exception as exc:
            message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning(
                "outbox.publish_failed", message_id=str(message.id), error=message.last_error
            )
            break
        message.sent_at = dt.datetime.now(dt.UTC)
        message.last_error = None
        sent += 1
    session.flush()
    return sent
