"""Celery tasks and the Celery application factory.

Tasks take ids, never ORM objects, and are safe to run twice: the reconciler claims
its operation with a compare-and-set, and the outbox relay marks what it sent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from typing import Any
from uuid import UUID

import structlog
from celery import Celery, shared_task
from celery.signals import task_prerun, worker_process_init
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.database import build_engine, build_session_factory, unit_of_work
from control_plane.core.settings import Settings, load_settings
from control_plane.fleet import rollouts
from control_plane.outbox import service as outbox
from control_plane.outbox.models import OutboxMessage
from control_plane.provisioning.drivers import build_driver
from control_plane.provisioning.drivers.base import TransientDriverError
from control_plane.provisioning.reconciler import Reconciler

log = structlog.get_logger(__name__)

RELAY_TASK = "backlot.outbox.relay"
RESYNC_TASK = "backlot.provisioning.resync"
ADVANCE_ROLLOUTS_TASK = "backlot.fleet.advance_rollouts"


def _transport_options(broker_url: str) -> dict[str, Any]:
    if broker_url.startswith("sqla+"):
        # kombu's SQLAlchemy transport hands these options to create_engine; it polls every second.
        return {}
    # Longer than any reconcile; a lost delivery is repaired by the resync anyway.
    return {"visibility_timeout": 3600}


def build_celery(settings: Settings) -> Celery:
    app = Celery("backlot", broker=settings.resolved_broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(settings.resolved_broker_url),
        worker_hijack_root_logger=False,
        beat_schedule={
            "relay-outbox": {
                "task": RELAY_TASK,
                "schedule": settings.outbox_relay_interval_seconds,
            },
            "resync-tenants": {"task": RESYNC_TASK, "schedule": settings.resync_interval_seconds},
            "advance-rollouts": {
                "task": ADVANCE_ROLLOUTS_TASK,
                "schedule": settings.rollout_tick_seconds,
            },
        },
        beat_schedule_filename=str(settings.resolved_data_dir / "beat-schedule"),
        imports=("control_plane.worker",),
    )
    return app


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    reconciler: Reconciler
    celery: Celery

    def publish(self, message: OutboxMessage) -> None:
        self.celery.send_task(
            message.task_name, kwargs=message.payload, task_id=str(message.id), retry=False
        )

    def relay(self) -> int:
        with unit_of_work(self.sessions) as session:
            return outbox.relay(session, self.publish)


@cache
def current_context() -> WorkerContext:
    settings = load_settings()
    engine = build_engine(settings.resolved_database_url)
    sessions = build_session_factory(engine)
    return WorkerContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        reconciler=Reconciler(settings, sessions, build_driver(settings)),
        celery=build_celery(settings),
    )


@worker_process_init.connect
def _fresh_context_per_process(**_: Any) -> None:
    # Connections must not cross a fork.
    current_context.cache_clear()


@task_prerun.connect
def _bind_task_ids(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task=getattr(task, "name", None))


class _ReconcileRetry(Exception):
    pass


@shared_task(
    name="backlot.provisioning.reconcile_tenant",
    bind=True,
    acks_late=True,
    max_retries=None,
)
def reconcile_tenant(self: Any, operation_id: str) -> str:
    """Bring one tenant to the generation its operation names."""
    context = current_context()
    try:
        outcome = context.reconciler.run(UUID(operation_id))
    except (TransientDriverError, OperationalError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        if self.request.retries >= context.settings.reconcile_max_retries:
            context.reconciler.give_up(UUID(operation_id), error)
            return "failed"
        context.reconciler.release(UUID(operation_id), error)
        # Exponential backoff with full jitter: retries from many workers do not stampede.
        countdown = random.uniform(0, min(60, 2 ** (self.request.retries + 1)))  # noqa: S311
        log.warning("reconcile.retry", error=error, countdown=countdown)
        raise self.retry(exc=_ReconcileRetry(error), countdown=countdown) from exc
    finally:
        structlog.contextvars.unbind_contextvars("tenant_id", "operation_id")
    return outcome.status


@shared_task(name=RELAY_TASK, ignore_result=True)
def relay_outbox() -> int:
    return current_context().relay()


@shared_task(name=RESYNC_TASK, ignore_result=True)
def resync_tenants() -> int:
    context = current_context()
    requested = context.reconciler.resync()
    context.relay()
    return len(requested)


@shared_task(name=ADVANCE_ROLLOUTS_TASK, ignore_result=True)
def advance_rollouts() -> int:
    """One tick of every rollout in progress; each in its own transaction."""
    context = current_context()
    with unit_of_work(context.sessions) as session:
        active = rollouts.active_ids(session)
    for rollout_id in active:
        with unit_of_work(context.sessions) as session:
            rollouts.advance(session, rollout_id)
    context.relay()
    return len(active)
