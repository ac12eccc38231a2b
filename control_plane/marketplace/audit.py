"""Where every marketplace change is recorded: installs, upgrades, uninstalls, purchases.

One function, so that the control plane's audit log can take these records in one place;
until then each is a row in the tenant's event log (it keeps the tenant's state unchanged).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from control_plane.tenants import service as tenants
from control_plane.tenants.models import Tenant


def record(
    session: Session,
    tenant: Tenant,
    *,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
) -> None:
    described = ", ".join(f"{k}={v}" for k, v in sorted((details or {}).items()))
    tenants.record_event(
        session,
        tenant,
        from_state=tenant.state,
        to_state=tenant.state,
        reason=action,
        message=f"{target}{': ' + described if described else ''}",
        actor=actor,
    )
