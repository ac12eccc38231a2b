"""What billing plugs into the runtime link: the recorder of the runtimes' usage reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from billing import seats, service
from control_plane.core.errors import ValidationFailed
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


def install() -> None:
    runtime_link.USAGE_RECORDER = record_usage
    if console_notice not in console.CONSOLE_NOTICES:
        console.CONSOLE_NOTICES.append(console_notice)
