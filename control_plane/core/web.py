"""Web plumbing shared by the control plane's pages and APIs: state, sessions, guards, ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio
import structlog
from celery import Celery
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.database import unit_of_work
from control_plane.core.settings import Settings
from control_plane.outbox import service as outbox
from control_plane.outbox.models import OutboxMessage

log = structlog.get_logger(__name__)

_PENDING_OUTBOX = "backlot_pending_outbox"

# The request's unit of work: committed by the database plugin when the response is a success.
DbSession = NamedDependency[Session]


@dataclass
class PlaneState:
    settings: Settings
    sessions: sessionmaker[Session]
    celery: Celery

    def publish(self, message: OutboxMessage) -> None:
        self.celery.send_task(
            message.task_name, kwargs=message.payload, task_id=str(message.id), retry=False
        )


def plane(state: State) -> PlaneState:
    value: PlaneState = state.plane
    return value


def relay_after_commit(request: Request[Any, Any, Any]) -> None:
    """Relay the outbox once this request's transaction has committed and its response is sent."""
    request.state[_PENDING_OUTBOX] = True


async def relay_pending(request: Request[Any, Any, Any]) -> None:
    if not request.state.get(_PENDING_OUTBOX):
        return
    state = plane(request.app.state)

    def _relay() -> None:
        # Best effort: if the broker is away the rows stay unsent and the periodic relay sends them.
        try:
            with unit_of_work(state.sessions) as session:
                outbox.relay(session, state.publish)
        except Exception as exc:
            log.warning("outbox.relay_after_commit_failed", error=str(exc))

    await anyio.to_thread.run_sync(_relay)


def session_user_id(connection: ASGIConnection[Any, Any, Any, Any]) -> UUID | None:
    raw = connection.session.get("user_id") if connection.scope.get("session") is not None else None
    if not raw:
        return None
    try:
        return UUID(str(raw))
    except ValueError:
        return None


def require_login(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if session_user_id(connection) is None:
        raise NotAuthorizedException("Log in to continue.")


async def bind_request_context(request: Request[Any, Any, Any]) -> None:
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    request.state["request_id"] = request_id


async def stamp_request_id(response: Response[Any]) -> Response[Any]:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        response.headers["x-request-id"] = str(request_id)
    return response
