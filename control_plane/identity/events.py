"""Where identity changes are recorded: SSO configuration, tests, enabling, break-glass logins.

Every such change goes through ``record`` and nowhere else, so the audit log has one call
site to join when it lands.
"""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session

from control_plane.tenants import service as tenants
from control_plane.tenants.models import Tenant

log = structlog.get_logger(__name__)


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
    # The audit log's call goes here, with the same reason, message and actor.
    log.info("identity.event", tenant_id=str(tenant.id), reason=reason, actor=actor)
    session.flush()
