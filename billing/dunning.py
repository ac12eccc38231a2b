"""Our side of dunning: grace after a failed payment, then suspension; retention after a cancel."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.models import BillingAccount
from billing.service import ACTOR, DUNNING
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState

log = structlog.get_logger(__name__)


def enforce(session: Session, current: dt.datetime) -> dict[str, list[UUID]]:
    """Suspend portals whose grace ran out; delete those whose retention after a cancel ran out."""
    suspended: list[UUID] = []
    deleted: list[UUID] = []
    overdue = session.scalars(
        select(BillingAccount).where(
            BillingAccount.status.in_(DUNNING), BillingAccount.grace_ends_at <= current
        )
    ).all()
    for account in overdue:
        tenant = tenants.get_tenant(session, account.tenant_id)
        if "billing" in tenant.suspension_holds or tenant.state in (
            TenantState.DELETING,
            TenantState.DELETED,
        ):
            continue
        tenants.suspend(
            session,
            tenant,
            holder="billing",
            actor=ACTOR,
            reason="the grace period after a failed payment ended",
        )
        account.notice = (
            "The portal is suspended because a payment failed. Its data is kept; "
            "paying the open invoice brings it back."
        )
        suspended.append(tenant.id)
    expired = session.scalars(
        select(BillingAccount).where(
            BillingAccount.canceled_at.is_not(None), BillingAccount.retention_ends_at <= current
        )
    ).all()
    for account in expired:
        tenant = tenants.get_tenant(session, account.tenant_id)
        if tenant.state in (TenantState.DELETING, TenantState.DELETED):
            continue
        tenants.request_deletion(
            session, tenant, actor=ACTOR, reason="the subscription was canceled"
        )
        deleted.append(tenant.id)
    session.flush()
    if suspended or deleted:
        log.info(
            "billing.dunning_enforced",
            suspended=[str(t) for t in suspended],
            deleted=[str(t) for t in deleted],
        )
    return {"suspended": suspended, "deleted": deleted}
