"""Prometheus metrics of the control plane, read from its database at scrape time.

Reading the database keeps the figures the same whichever web process is scraped and
whichever worker did the work: operations, the outbox and the tenants are all rows.
Counters and the reconcile histogram only grow, because operations are never deleted.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import REGISTRY
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from control_plane.fleet.models import Rollout
from control_plane.outbox.models import OutboxMessage
from control_plane.provisioning.models import Operation, OperationState
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant

log = structlog.get_logger(__name__)

RECONCILE_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class InboxSource:
    """Where received webhooks wait to be handled: ``table.received_column.handled_column``."""

    table: str
    received: str
    handled: str

    @classmethod
    def parse(cls, value: str) -> InboxSource | None:
        if not value:
            return None
        parts = value.split(".")
        if len(parts) != 3 or not all(_IDENTIFIER.match(p) for p in parts):
            raise ValueError(f"webhook inbox {value!r}: give table.received_column.handled_column")
        return cls(*parts)


def _seconds_between(session: Session, start: Any, end: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


def _age(oldest: Any) -> float:
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):
        oldest = dt.datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    age: float = (dt.datetime.now(dt.UTC) - oldest).total_seconds()
    return max(0.0, age)


class ControlPlaneCollector(Collector):
    def __init__(self) -> None:
        self.sessions: sessionmaker[Session] | None = None
        self.inbox: InboxSource | None = None

    def configure(self, sessions: sessionmaker[Session], inbox: str = "") -> None:
        self.sessions = sessions
        self.inbox = InboxSource.parse(inbox)

    def describe(self) -> list[Metric]:
        # Nothing to check at registration time: the figures need the database.
        return []

    def collect(self) -> Iterator[Metric]:
        if self.sessions is None:
            return
        try:
            with self.sessions() as session:
                yield from self._tenants(session)
                yield from self._operations(session)
                yield from self._outbox(session)
                yield from self._rollouts(session)
                yield from self._inbox(session)
        except SQLAlchemyError as exc:
            log.warning("metrics.collect_failed", error=str(exc))

    def _tenants(self, session: Session) -> Iterator[Metric]:
        states = GaugeMetricFamily(
            "backlot_tenants", "Tenants by lifecycle state.", labels=["state"]
        )
        counts: dict[str, int] = {
            str(state): n
            for state, n in session.execute(
                select(Tenant.state, func.count()).group_by(Tenant.state)
            )
        }
        for state in TenantState:
            states.add_metric([state.value], counts.get(state.value, 0))
        yield states
        releases = GaugeMetricFamily(
            "backlot_tenants_by_release", "Live tenants by runtime release.", labels=["release"]
        )
        live = Tenant.state.not_in([TenantState.DELETED])
        for release, count in session.execute(
            select(Tenant.runtime_release, func.count())
            .where(live)
            .group_by(Tenant.runtime_release)
        ):
            releases.add_metric([release], count)
        yield releases

    def _operations(self, session: Session) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "backlot_reconcile_operations",
            "Reconcile operations by how they ended (failed: reconcile errors).",
            labels=["state"],
        )
        counts: dict[str, int] = {
            str(state): n
            for state, n in session.execute(
                select(Operation.state, func.count()).group_by(Operation.state)
            )
        }
        for state in OperationState:
            total.add_metric([state.value], counts.get(state.value, 0))
        yield total

        duration = _seconds_between(session, Operation.started_at, Operation.finished_at)
        finished = (Operation.state == OperationState.SUCCEEDED) | (
            Operation.state == OperationState.FAILED
        )
        columns = [func.count(), func.coalesce(func.sum(duration), 0.0)]
        columns += [func.sum(case((duration <= bound, 1), else_=0)) for bound in RECONCILE_BUCKETS]
        row = session.execute(
            select(*columns).where(
                finished, Operation.started_at.is_not(None), Operation.finished_at.is_not(None)
            )
        ).one()
        count, total_seconds, *in_buckets = row
        histogram = HistogramMetricFamily(
            "backlot_reconcile_duration_seconds",
            "Time from a worker claiming a reconcile to its end (last attempt).",
            buckets=[
                *[
                    (str(bound), int(n or 0))
                    for bound, n in zip(RECONCILE_BUCKETS, in_buckets, strict=True)
                ],
                ("+Inf", int(count or 0)),
            ],
            sum_value=float(total_seconds or 0.0),
        )
        yield histogram

    def _outbox(self, session: Session) -> Iterator[Metric]:
        oldest, unsent = session.execute(
            select(func.min(OutboxMessage.created_at), func.count()).where(
                OutboxMessage.sent_at.is_(None)
            )
        ).one()
        lag = GaugeMetricFamily(
            "backlot_outbox_lag_seconds", "Age of the oldest message not yet relayed to the broker."
        )
        lag.add_metric([], _age(oldest))
        yield lag
        yield GaugeMetricFamily(
            "backlot_outbox_unsent", "Messages waiting to be relayed.", value=unsent
        )

    def _rollouts(self, session: Session) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("backlot_rollouts", "Rollouts by state.", labels=["state"])
        for state, count in session.execute(
            select(Rollout.state, func.count()).group_by(Rollout.state)
        ):
            gauge.add_metric([str(state)], count)
        yield gauge

    def _inbox(self, session: Session) -> Iterator[Metric]:
        if self.inbox is None:
            return
        source = self.inbox
        # The identifiers were checked against a strict pattern in InboxSource.parse.
        query = text(
            f"SELECT min({source.received}), count(*) FROM {source.table} "  # noqa: S608
            f"WHERE {source.handled} IS NULL"
        )
        try:
            with session.begin_nested():
                oldest, pending = session.execute(query).one()
        except SQLAlchemyError as exc:
            log.warning("metrics.webhook_inbox_unreadable", table=source.table, error=str(exc))
            return
        lag = GaugeMetricFamily(
            "backlot_webhook_lag_seconds", "Age of the oldest received webhook not yet handled."
        )
        lag.add_metric([], _age(oldest))
        yield lag
        yield GaugeMetricFamily(
            "backlot_webhook_unhandled", "Received webhooks not yet handled.", value=pending
        )


collector = ControlPlaneCollector()
REGISTRY.register(collector)
