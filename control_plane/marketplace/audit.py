"""Where every marketplace change is recorded: installs, upgrades, uninstalls, purchases.

Each is an entry in the control plane's append-only audit log, written in the caller's
transaction so it is kept exactly when the change is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from control_plane.audit import service as audit_log
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
    audit_log.record(
        session, actor=actor, action=action, tenant_id=tenant.id, target=target, details=details
    )
