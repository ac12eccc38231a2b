"""Rollouts: move tenants to a runtime release in waves, each wave gated on health.

``advance`` is level-triggered and idempotent: it reads where the rollout stands from the
database, takes the next step, and writes it in the caller's transaction under a lock on
the rollout row. A worker killed mid-step loses only an uncommitted step; the next tick
(Celery beat) takes it again. Each tenant move is a spec change with its own reconcile
operation, whose id the target keeps.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.core.errors import Conflict, NotFound, ValidationFailed
from control_plane.fleet import releases
from control_plane.fleet.actions import COHORTS
from control_plane.fleet.models import (
    Rollout,
    RolloutState,
    RolloutTarget,
    RuntimeRelease,
    TargetState,
)
from control_plane.fleet.views import TenantFilter
from control_plane.provisioning.models import Operation, OperationState
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant

log = structlog.get_logger(__name__)

DEFAULT_WAVES: list[dict[str, Any]] = [
    {"name": "canary", "percent": 1},
    {"name": "early", "percent": 10},
    {"name": "half", "percent": 50},
    {"name": "all", "percent": 100},
]
ACTIVE = (RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.ROLLING_BACK)
_COHORT_ORDER = {"early": 0, "default": 1, "late": 2}


def _check_waves(waves: list[dict[str, Any]]) -> None:
    if not waves:
        raise ValidationFailed({"waves": "waves: at least one wave"})
    by_cohort = any("cohort" in w for w in waves)
    previous = 0.0
    for index, wave in enumerate(waves):
        name = wave.get("name") or f"wave {index + 1}"
        if by_cohort:
            if wave.get("cohort") not in COHORTS or "percent" in wave:
                raise ValidationFailed(
                    {"waves": f"waves: {name}: name a cohort ({', '.join(COHORTS)}) and no percent"}
                )
            continue
        percent = wave.get("percent")
        if not isinstance(percent, int | float) or not previous < percent <= 100:
            raise ValidationFailed(
                {"waves": f"waves: {name}: percent must grow from wave to wave, up to 100"}
            )
        previous = float(percent)
    if not by_cohort and previous != 100:
        raise ValidationFailed({"waves": "waves: the last wave must reach 100 percent"})


def _assign(waves: list[dict[str, Any]], candidates: list[Tenant]) -> list[tuple[Tenant, int]]:
    """Each tenant's wave. Early-cohort tenants come first, late ones last."""
    if any("cohort" in w for w in waves):
        index = {w["cohort"]: i for i, w in enumerate(waves)}
        last = len(waves) - 1
        return [(t, index.get(t.rollout_cohort, last)) for t in candidates]
    ordered = sorted(candidates, key=lambda t: (_COHORT_ORDER.get(t.rollout_cohort, 1), str(t.id)))
    total = len(ordered)
    assigned: list[tuple[Tenant, int]] = []
    start = 0
    for i, wave in enumerate(waves):
        # At least one tenant per wave while any are left: a 1 % canary of 50 tenants is one.
        end = min(total, max(start + 1, math.ceil(total * float(wave["percent"]) / 100)))
        if i == len(waves) - 1:
            end = total
        assigned += [(t, i) for t in ordered[start:end]]
        start = end
    return assigned


def start(
    session: Session,
    *,
    version: str,
    actor: str,
    waves: list[dict[str, Any]] | None = None,
    selector: dict[str, Any] | None = None,
    ready_deadline_seconds: float = 600.0,
) -> Rollout:
    """Plan a rollout (which tenant goes in which wave); the first wave moves on the next tick."""
    release = releases.get_release(session, version)
    waves = [dict(w) for w in (waves or DEFAULT_WAVES)]
    _check_waves(waves)
    if ready_deadline_seconds <= 0:
        raise ValidationFailed({"ready_deadline_seconds": "ready_deadline_seconds must be > 0"})
    where = TenantFilter.from_document({**(selector or {}), "pinned": False})
    running = session.scalar(select(Rollout.id).where(Rollout.state.in_(ACTIVE)).limit(1))
    if running is not None:
        raise Conflict(f"rollout {running} is still in progress; finish or abort it first")
    candidates = list(
        session.scalars(
            where.select().where(
                Tenant.state.not_in([TenantState.DELETING, TenantState.DELETED]),
                Tenant.runtime_release != release.version,
            )
        )
    )
    if not candidates:
        raise Conflict(f"no tenant matches the selector and runs another release than {version}")
    rollout = Rollout(
        release_id=release.id,
        state=RolloutState.RUNNING,
        waves=waves,
        current_wave=0,
        ready_deadline_seconds=ready_deadline_seconds,
        selector=where.document(),
        created_by=actor,
        message="",
    )
    session.add(rollout)
    session.flush()
    for tenant, wave in _assign(waves, candidates):
        session.add(
            RolloutTarget(
                rollout_id=rollout.id,
                tenant_id=tenant.id,
                wave=wave,
                previous_release=tenant.runtime_release,
                state=TargetState.WAITING,
                detail="",
            )
        )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="rollout.start",
        target=str(rollout.id),
        details={"release": version, "waves": waves, "tenants": len(candidates)},
    )
    return rollout


def get_rollout(session: Session, rollout_id: UUID, *, lock: bool = False) -> Rollout:
    rollout = session.get(Rollout, rollout_id, with_for_update=lock)
    if rollout is None:
        raise NotFound(f"no rollout {rollout_id}")
    return rollout


def _targets(session: Session, rollout: Rollout, wave: int | None = None) -> list[RolloutTarget]:
    query = select(RolloutTarget).where(RolloutTarget.rollout_id == rollout.id)
    if wave is not None:
        query = query.where(RolloutTarget.wave == wave)
    return list(session.scalars(query.order_by(RolloutTarget.wave, RolloutTarget.id)))


def _actor(rollout: Rollout) -> str:
    return f"rollout:{rollout.id}"


def _move(
    session: Session, rollout: Rollout, release: RuntimeRelease, target: RolloutTarget
) -> None:
    tenant = tenants.get_tenant(session, target.tenant_id)
    if tenant.pinned_release is not None or tenant.state in (
        TenantState.DELETING,
        TenantState.DELETED,
    ):
        target.state = TargetState.DONE
        target.detail = "skipped: pinned" if tenant.pinned_release else f"skipped: {tenant.state}"
        return
    operation = tenants.set_release(
        session, tenant, release.version, actor=_actor(rollout), reason="RolloutWave"
    )
    target.state = TargetState.MOVING
    target.generation = tenant.generation
    target.operation_id = operation.id


def _settled(tenant: Tenant, target: RolloutTarget) -> bool:
    return (
        target.generation is not None
        and tenant.observed_generation >= target.generation
        and tenant.state in (TenantState.ACTIVE, TenantState.SUSPENDED)
    )


def _failed(session: Session, tenant: Tenant, target: RolloutTarget) -> bool:
    """The target's own operation failed, or the tenant failed with nothing left to run.

    An older operation of the same tenant failing late does not count against a newer one.
    """
    operation = session.get(Operation, target.operation_id) if target.operation_id else None
    if operation is not None and operation.state == OperationState.FAILED:
        return True
    live = operation is not None and operation.state in (
        OperationState.PENDING,
        OperationState.RUNNING,
    )
    return tenant.state == TenantState.FAILED and not live


def _gate(session: Session, rollout: Rollout, target: RolloutTarget, now: dt.datetime) -> None:
    """One moving tenant against the health gate: Ready in time, not failed (crash loops and
    pods that never become ready fail the reconcile with their reason)."""
    tenant = tenants.get_tenant(session, target.tenant_id)
    if _settled(tenant, target):
        target.state = TargetState.DONE
        target.detail = ""
        return
    if _failed(session, tenant, target):
        target.state = TargetState.FAILED
        target.detail = tenant.failure_reason or "the reconcile failed"
        return
    started = rollout.wave_started_at or now
    if (now - started).total_seconds() > rollout.ready_deadline_seconds:
        target.state = TargetState.FAILED
        target.detail = f"not Ready within {rollout.ready_deadline_seconds:.0f}s"


def _roll_back_wave(session: Session, rollout: Rollout, wave: list[RolloutTarget]) -> None:
    for target in wave:
        if target.state not in (TargetState.MOVING, TargetState.DONE, TargetState.FAILED):
            continue
        if target.generation is None:  # skipped, never moved
            continue
        tenant = tenants.get_tenant(session, target.tenant_id)
        operation = tenants.set_release(
            session,
            tenant,
            target.previous_release,
            actor=_actor(rollout),
            reason="RolloutRollback",
        )
        target.state = TargetState.ROLLING_BACK
        target.generation = tenant.generation
        target.operation_id = operation.id


def _finish(
    session: Session, rollout: Rollout, state: RolloutState, message: str, now: dt.datetime
) -> None:
    rollout.state = state
    rollout.message = message
    rollout.finished_at = now
    audit.record(
        session,
        actor=_actor(rollout),
        action=f"rollout.{state}",
        target=str(rollout.id),
        details={"message": message, "wave": rollout.current_wave},
    )


def advance(session: Session, rollout_id: UUID) -> RolloutState:
    """Take every step the rollout can take now; return its state."""
    rollout = get_rollout(session, rollout_id, lock=True)
    release = session.get(RuntimeRelease, rollout.release_id)
    assert release is not None
    now = tenants.now()
    if rollout.state == RolloutState.ROLLING_BACK:
        _advance_rollback(session, rollout, now)
        return rollout.state
    while rollout.state == RolloutState.RUNNING:
        wave = _targets(session, rollout, rollout.current_wave)
        if rollout.wave_started_at is None:
            rollout.wave_started_at = now
            for target in wave:
                if target.state == TargetState.WAITING:
                    _move(session, rollout, release, target)
            session.flush()
        for target in wave:
            if target.state == TargetState.MOVING:
                _gate(session, rollout, target, now)
        session.flush()
        failed = [t for t in wave if t.state == TargetState.FAILED]
        if failed:
            name = rollout.waves[rollout.current_wave].get("name", rollout.current_wave + 1)
            rollout.message = (
                f"wave {name}: health gate failed for {len(failed)} tenant(s): {failed[0].detail}"
            )
            _roll_back_wave(session, rollout, wave)
            rollout.state = RolloutState.ROLLING_BACK
            audit.record(
                session,
                actor=_actor(rollout),
                action="rollout.gate-failed",
                target=str(rollout.id),
                details={
                    "wave": rollout.current_wave,
                    "failed": len(failed),
                    "reason": failed[0].detail,
                },
            )
            log.warning("rollout.gate_failed", rollout_id=str(rollout.id), reason=failed[0].detail)
            break
        if any(t.state == TargetState.MOVING for t in wave):
            break
        if rollout.current_wave + 1 >= len(rollout.waves):
            _finish(
                session,
                rollout,
                RolloutState.SUCCEEDED,
                f"every tenant runs {release.version}",
                now,
            )
            break
        rollout.current_wave += 1
        rollout.wave_started_at = None
    session.flush()
    return rollout.state


def _advance_rollback(session: Session, rollout: Rollout, now: dt.datetime) -> None:
    pending = False
    for target in _targets(session, rollout, rollout.current_wave):
        if target.state != TargetState.ROLLING_BACK:
            continue
        tenant = tenants.get_tenant(session, target.tenant_id)
        if _settled(tenant, target):
            target.state = TargetState.ROLLED_BACK
        elif _failed(session, tenant, target):
            target.state = TargetState.FAILED
            target.detail = f"the rollback failed too: {tenant.failure_reason}"
        else:
            pending = True
    if not pending:
        _finish(session, rollout, RolloutState.FAILED, rollout.message, now)
    session.flush()


def pause(session: Session, rollout_id: UUID, *, actor: str) -> Rollout:
    rollout = get_rollout(session, rollout_id, lock=True)
    if rollout.state != RolloutState.RUNNING:
        raise Conflict(f"only a running rollout can be paused; this one is {rollout.state}")
    rollout.state = RolloutState.PAUSED
    audit.record(session, actor=actor, action="rollout.pause", target=str(rollout.id))
    session.flush()
    return rollout


def resume(session: Session, rollout_id: UUID, *, actor: str) -> Rollout:
    rollout = get_rollout(session, rollout_id, lock=True)
    if rollout.state != RolloutState.PAUSED:
        raise Conflict(f"only a paused rollout can be resumed; this one is {rollout.state}")
    rollout.state = RolloutState.RUNNING
    # The gate's deadline counts from now: time spent paused is not the tenants' fault.
    if rollout.wave_started_at is not None:
        rollout.wave_started_at = tenants.now()
    audit.record(session, actor=actor, action="rollout.resume", target=str(rollout.id))
    session.flush()
    return rollout


def abort(session: Session, rollout_id: UUID, *, actor: str) -> Rollout:
    """Stop moving tenants; those already moved stay on the new release."""
    rollout = get_rollout(session, rollout_id, lock=True)
    if rollout.state not in (RolloutState.RUNNING, RolloutState.PAUSED):
        raise Conflict(
            f"only a running or paused rollout can be aborted; this one is {rollout.state}"
        )
    rollout.state = RolloutState.ABORTED
    rollout.finished_at = tenants.now()
    rollout.message = f"aborted by {actor}"
    audit.record(session, actor=actor, action="rollout.abort", target=str(rollout.id))
    session.flush()
    return rollout


def active_ids(session: Session) -> list[UUID]:
    return list(
        session.scalars(
            select(Rollout.id).where(
                Rollout.state.in_([RolloutState.RUNNING, RolloutState.ROLLING_BACK])
            )
        )
    )


def listing(session: Session, limit: int = 50) -> list[Rollout]:
    return list(session.scalars(select(Rollout).order_by(Rollout.created_at.desc()).limit(limit)))


def document(session: Session, rollout: Rollout, *, with_targets: bool = False) -> dict[str, Any]:
    release = session.get(RuntimeRelease, rollout.release_id)
    targets = _targets(session, rollout)
    waves = []
    for index, wave in enumerate(rollout.waves):
        in_wave = [t for t in targets if t.wave == index]
        counts: dict[str, int] = {}
        for target in in_wave:
            counts[str(target.state)] = counts.get(str(target.state), 0) + 1
        waves.append({**wave, "index": index, "tenants": len(in_wave), "states": counts})
    out: dict[str, Any] = {
        "id": str(rollout.id),
        "release": release.version if release else None,
        "state": str(rollout.state),
        "current_wave": rollout.current_wave,
        "waves": waves,
        "ready_deadline_seconds": rollout.ready_deadline_seconds,
        "selector": rollout.selector,
        "created_by": rollout.created_by,
        "created_at": rollout.created_at.isoformat(),
        "finished_at": rollout.finished_at.isoformat() if rollout.finished_at else None,
        "message": rollout.message,
        "tenants": len(targets),
    }
    if with_targets:
        rows = session.execute(
            select(Tenant.id, Tenant.slug).where(Tenant.id.in_([t.tenant_id for t in targets]))
        ).all()
        slugs: dict[UUID, str] = {row[0]: row[1] for row in rows}
        out["targets"] = [
            {
                "tenant_id": str(t.tenant_id),
                "slug": slugs.get(t.tenant_id),
                "wave": t.wave,
                "state": str(t.state),
                "previous_release": t.previous_release,
                "operation_id": str(t.operation_id) if t.operation_id else None,
                "detail": t.detail,
            }
            for t in targets
        ]
    return out
