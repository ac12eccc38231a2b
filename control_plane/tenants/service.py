"""Changing a tenant's spec and recording its lifecycle. Services flush; callers commit."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.errors import Conflict, NotFound
from control_plane.identity.models import Organization
from control_plane.outbox import service as outbox
from control_plane.provisioning.models import Operation, OperationState
from control_plane.tenants.lifecycle import TenantState, check_transition
from control_plane.tenants.models import Tenant, TenantEvent

RECONCILE_TASK = "backlot.provisioning.reconcile_tenant"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def get_tenant(session: Session, tenant_id: UUID) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    return tenant


def tenant_of_organization(session: Session, organization_id: UUID) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.organization_id == organization_id))
    if tenant is None:
        raise NotFound("this organization has no portal")
    return tenant


def record_event(
    session: Session,
    tenant: Tenant,
    *,
    to_state: TenantState,
    reason: str,
    message: str = "",
    actor: str,
    from_state: TenantState | None = None,
    operation_id: UUID | None = None,
) -> TenantEvent:
    event = TenantEvent(
        tenant_id=tenant.id,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        message=message,
        actor=actor,
        operation_id=operation_id,
    )
    session.add(event)
    return event


def transition(
    session: Session,
    tenant: Tenant,
    target: TenantState,
    *,
    reason: str,
    message: str = "",
    actor: str,
    operation_id: UUID | None = None,
) -> None:
    """Move a tenant to ``target`` and record who did it and why."""
    if tenant.state == target:
        return
    check_transition(tenant.state, target)
    previous = tenant.state
    tenant.state = target
    record_event(
        session,
        tenant,
        from_state=previous,
        to_state=target,
        reason=reason,
        message=message,
        actor=actor,
        operation_id=operation_id,
    )
    session.flush()


def set_condition(tenant: Tenant, kind: str, status: bool, reason: str, message: str = "") -> None:
    """Set one condition; its transition time moves only when its status changes."""
    value = "True" if status else "False"
    stamp = now().isoformat()
    conditions = [dict(c) for c in tenant.conditions]
    for condition in conditions:
        if condition["type"] == kind:
            if condition["status"] != value:
                condition["last_transition_time"] = stamp
            condition.update(status=value, reason=reason, message=message)
            break
    else:
        conditions.append(
            {
                "type": kind,
                "status": value,
                "reason": reason,
                "message": message,
                "last_transition_time": stamp,
            }
        )
    # A new list, so the JSON column sees the change.
    tenant.conditions = conditions


def request_reconcile(session: Session, tenant: Tenant) -> Operation:
    """Record an operation for the tenant's current generation; announce it via the outbox."""
    operation = Operation(tenant_id=tenant.id, kind="reconcile", generation=tenant.generation)
    session.add(operation)
    session.flush()
    outbox.enqueue(session, RECONCILE_TASK, {"operation_id": str(operation.id)})
    return operation


def create_tenant(
    session: Session, organization: Organization, *, runtime_release: str, actor: str
) -> Tenant:
    tenant = Tenant(
        organization_id=organization.id,
        slug=organization.slug,
        plan=organization.plan,
        runtime_release=runtime_release,
        size_tier="small",
        generation=1,
        state=TenantState.PENDING,
        observed_generation=0,
        conditions=[],
        runtime_names={},
    )
    session.add(tenant)
    session.flush()
    record_event(session, tenant, to_state=TenantState.PENDING, reason="SignedUp", actor=actor)
    request_reconcile(session, tenant)
    return tenant


def retry(session: Session, tenant: Tenant, *, actor: str) -> Operation:
    """Try a failed tenant again: its provisioning, or its deletion if that is what failed."""
    if tenant.state != TenantState.FAILED:
        raise Conflict(f"only a failed portal can be retried; this one is {tenant.state}")
    tenant.generation += 1
    tenant.failure_reason = None
    target = TenantState.DELETING if tenant.deletion_requested_at else TenantState.PROVISIONING
    transition(session, tenant, target, reason="RetryRequested", actor=actor)
    return request_reconcile(session, tenant)


def request_deletion(
    session: Session, tenant: Tenant, *, actor: str, reason: str = ""
) -> Operation:
    """Take the portal down in order and keep its data for the retention period."""
    if tenant.state in (TenantState.DELETING, TenantState.DELETED):
        raise Conflict(f"this portal is already {tenant.state}")
    tenant.deletion_requested_at = now()
    tenant.generation += 1
    transition(
        session,
        tenant,
        TenantState.DELETING,
        reason="DeletionRequested",
        message=reason,
        actor=actor,
    )
    return request_reconcile(session, tenant)


SUSPENSION_HOLDERS = frozenset({"billing", "operator"})


def suspend(
    session: Session, tenant: Tenant, *, holder: str, actor: str, reason: str = ""
) -> Operation | None:
    """Scale the portal to zero and keep its data; ``holder`` must lift its own hold later.

    Returns the reconcile operation, or None when the portal was already suspended (the new
    hold is still recorded).
    """
    if holder not in SUSPENSION_HOLDERS:
        raise ValueError(f"unknown suspension holder {holder!r}")
    if tenant.state in (TenantState.DELETING, TenantState.DELETED):
        raise Conflict(f"a portal that is {tenant.state} cannot be suspended")
    if holder in tenant.suspension_holds:
        return None
    tenant.suspension_holds = sorted({*tenant.suspension_holds, holder})
    record_event(
        session,
        tenant,
        from_state=tenant.state,
        to_state=tenant.state,
        reason="SuspensionRequested",
        message=f"{holder}: {reason}" if reason else holder,
        actor=actor,
    )
    if tenant.suspended:
        session.flush()
        return None
    tenant.suspended = True
    tenant.generation += 1
    return request_reconcile(session, tenant)


def resume(session: Session, tenant: Tenant, *, holder: str, actor: str) -> Operation | None:
    """Lift ``holder``'s hold; the portal runs again once no one holds it suspended."""
    if holder not in tenant.suspension_holds:
        return None
    tenant.suspension_holds = [h for h in tenant.suspension_holds if h != holder]
    record_event(
        session,
        tenant,
        from_state=tenant.state,
        to_state=tenant.state,
        reason="SuspensionLifted",
        message=holder,
        actor=actor,
    )
    if tenant.suspension_holds or tenant.state in (TenantState.DELETING, TenantState.DELETED):
        session.flush()
        return None
    tenant.suspended = False
    tenant.generation += 1
    return request_reconcile(session, tenant)


def live_operation(session: Session, tenant_id: UUID) -> Operation | None:
    """An operation that is queued or held by a worker whose lease has not run out."""
    return session.scalar(
        select(Operation)
        .where(
            Operation.tenant_id == tenant_id,
            (Operation.state == OperationState.PENDING)
            | ((Operation.state == OperationState.RUNNING) & (Operation.lease_expires_at > now())),
        )
        .limit(1)
    )


def events(session: Session, tenant_id: UUID, limit: int = 50) -> list[TenantEvent]:
    return list(
        session.scalars(
            select(TenantEvent)
            .where(TenantEvent.tenant_id == tenant_id)
            .order_by(TenantEvent.created_at.desc())
            .limit(limit)
        )
    )


def status_document(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": str(tenant.id),
        "slug": tenant.slug,
        "state": str(tenant.state),
        "plan": tenant.plan,
        "runtime_release": tenant.runtime_release,
        "generation": tenant.generation,
        "observed_generation": tenant.observed_generation,
        "conditions": tenant.conditions,
        "url": tenant.runtime_url,
        "failure_reason": tenant.failure_reason,
        "suspension_holds": list(tenant.suspension_holds),
    }


def restore(session: Session, tenant: Tenant, *, actor: str) -> Operation:
    """Bring a deleted portal back while its data is still kept (before the purge)."""
    if tenant.state != TenantState.DELETED:
        raise Conflict(f"only a deleted portal can be restored; this one is {tenant.state}")
    if tenant.purged_at is not None or (
        tenant.purge_after is not None and tenant.purge_after <= now()
    ):
        raise Conflict("the retention period has ended and this portal's data was purged")
    tenant.deletion_requested_at = None
    tenant.purge_after = None
    tenant.generation += 1
    transition(session, tenant, TenantState.PROVISIONING, reason="Restored", actor=actor)
    return request_reconcile(session, tenant)


def _change_spec(session: Session, tenant: Tenant, *, actor: str) -> Operation:
    """A new generation of the spec; a failed portal is tried again with it."""
    if tenant.state in (TenantState.DELETING, TenantState.DELETED):
        raise Conflict(f"a portal that is {tenant.state} cannot be changed")
    tenant.generation += 1
    if tenant.state == TenantState.FAILED:
        tenant.failure_reason = None
        transition(session, tenant, TenantState.PROVISIONING, reason="SpecChanged", actor=actor)
    return request_reconcile(session, tenant)


def change_size_tier(session: Session, tenant: Tenant, size_tier: str, *, actor: str) -> Operation:
    previous = tenant.size_tier
    tenant.size_tier = size_tier
    record_event(
        session,
        tenant,
        from_state=tenant.state,
        to_state=tenant.state,
        reason="SizeTierChanged",
        message=f"{previous} -> {size_tier}",
        actor=actor,
    )
    return _change_spec(session, tenant, actor=actor)


def set_release(
    session: Session, tenant: Tenant, version: str, *, actor: str, reason: str = "ReleaseChanged"
) -> Operation:
    """Move the portal to another runtime release (a rollout wave, a rollback, a pin)."""
    previous = tenant.runtime_release
    tenant.runtime_release = version
    record_event(
        session,
        tenant,
        from_state=tenant.state,
        to_state=tenant.state,
        reason=reason,
        message=f"{previous} -> {version}",
        actor=actor,
    )
    return _change_spec(session, tenant, actor=actor)


def pin_release(
    session: Session, tenant: Tenant, version: str | None, *, actor: str
) -> Operation | None:
    """Hold the portal on ``version`` through rollouts; None lifts the pin (and moves nothing)."""
    tenant.pinned_release = version
    if version is None or version == tenant.runtime_release:
        record_event(
            session,
            tenant,
            from_state=tenant.state,
            to_state=tenant.state,
            reason="ReleasePinned" if version else "ReleaseUnpinned",
            message=version or "",
            actor=actor,
        )
        session.flush()
        return None
    return set_release(session, tenant, version, actor=actor, reason="ReleasePinned")


def force_reconcile(session: Session, tenant: Tenant, *, actor: str) -> Operation:
    """Run the reconciler now, even if the spec did not change (drift, a stuck portal)."""
    if tenant.state == TenantState.FAILED:
        return retry(session, tenant, actor=actor)
    if tenant.state == TenantState.DELETED and tenant.purged_at is not None:
        raise Conflict("this portal was deleted and purged; there is nothing to reconcile")
    record_event(
        session,
        tenant,
        from_state=tenant.state,
        to_state=tenant.state,
        reason="ReconcileRequested",
        actor=actor,
    )
    return request_reconcile(session, tenant)
