"""What billing plugs into the runtime link: the recorder of the runtimes' usage reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import seats, service
from billing.models import UsageReport
from control_plane.core.errors import ValidationFailed
from control_plane.fleet import views as fleet_views
from control_plane.runtime_link import service as runtime_link
from control_plane.tenants import routes as console
from control_plane.tenants.models import Tenant


def record_usage(session: Session, tenant: Tenant, report: dict[str, Any]) -> None:
    """Keep a verified report in the seat ledger; a repeated report changes nothing."""
    try:
        seats.record_usage(
            session,
            tenant_id=tenant.id,
            period=report["period"],
            active_users=report["active_users"],
            provisioned_users=report["provisioned_users"],
            reported_at=dt.datetime.fromisoformat(report["reported_at"]),
        )
    except ValueError as exc:
        raise ValidationFailed({"usage": str(exc)}) from None


def console_notice(session: Session, tenant: Tenant) -> str | None:
    """A failed payment's grace period, a trial's end: what the console's front page shows."""
    account = service.account_of_tenant(session, tenant.id)
    return account.notice if account is not None else None


def usage_section(session: Session, tenant: Tenant) -> dict[str, Any] | None:
    """The runtime's newest usage report, for the operators' tenant detail."""
    report = session.scalar(
        select(UsageReport)
        .where(UsageReport.tenant_id == tenant.id)
        .order_by(UsageReport.reported_at.desc())
        .limit(1)
    )
    if report is None:
        return None
    return {
        "period": report.period,
        "active_users": report.active_users,
        "provisioned_users": report.provisioned_users,
        "reported_at": report.reported_at.isoformat(),
    }


def subscription_section(session: Session, tenant: Tenant) -> dict[str, Any] | None:
    """The mirrored Stripe subscription, for the operators' tenant detail."""
    account = service.account_of_tenant(session, tenant.id)
    if account is None:
        return None
    return {
        "plan": account.plan,
        "status": account.status,
        "customer_id": account.customer_id,
        "subscription_id": account.subscription_id,
        "seats_billed": account.quantity,
        "current_period_end": _iso(account.current_period_end),
        "cancel_at_period_end": account.cancel_at_period_end,
        "grace_ends_at": _iso(account.grace_ends_at),
        "retention_ends_at": _iso(account.retention_ends_at),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def install() -> None:
    runtime_link.USAGE_RECORDER = record_usage
    fleet_views.DETAIL_SECTIONS["usage"] = usage_section
    fleet_views.DETAIL_SECTIONS["subscription"] = subscription_section
    if console_notice not in console.CONSOLE_NOTICES:
        console.CONSOLE_NOTICES.append(console_notice)
