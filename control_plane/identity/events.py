"""Where identity changes are recorded: SSO configuration, tests, enabling, break-glass logins.

Every such change goes through ``record`` and nowhere else: it becomes a tenant event (the
console's history) and an entry in the append-only audit log, in the caller's transaction.
"""

from __future__ import annotations

import re

import structlog
from sqlalchemy.orm import Session

from control_plane.audit import service as audit_log
from control_plane.tenants import service as tenants
from control_plane.tenants.models import Tenant

log = structlog.get_logger(__name__)


def _snake(reason: str) -> str:
    """``SsoTestPassed`` → ``sso_test_passed``: audit actions are lowercase and dotted."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", reason).lower()


def record(session: Session, tenant: Tenant, *, reason: str, message: str, actor: str) -> None:
    """A tenant event that leaves the lifecycle state as it is."""
    tenants.record_event(
        session,
        tenant,
        from_state=tenant.state,
        to_state=tenant.state,
        reason=reason,
        message=message,
        actor=actor,
    )
    audit_log.record(
        session,
        actor=actor,
        action=f"identity.{_snake(reason)}",
        tenant_id=tenant.id,
        details={"message": message},
    )
    log.info("identity.event", tenant_id=str(tenant.id), reason=reason, actor=actor)
    session.flush()
