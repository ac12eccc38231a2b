"""The tenant console (pages) and the tenant admin API for an organization's portal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.core.web import DbSession, relay_after_commit, require_login, session_user_id
from control_plane.identity.models import Membership, Organization, Role
from control_plane.identity.service import organization_of
from control_plane.tenants import service as tenants
from control_plane.tenants.models import Tenant
from control_plane.tenants.progress import is_settled, provisioning_steps


class Condition(msgspec.Struct):
    type: str
    status: str
    reason: str
    message: str
    last_transition_time: str


class TenantStatus(msgspec.Struct):
    id: str
    slug: str
    organization: str
    state: str
    plan: str
    runtime_release: str
    generation: int
    observed_generation: int
    url: str | None
    failure_reason: str | None
    conditions: list[Condition]


class TenantEventOut(msgspec.Struct):
    at: str
    from_state: str | None
    to_state: str
    reason: str
    message: str
    actor: str


def _membership(
    request: Request[Any, Any, Any], session: Session
) -> tuple[Organization, Membership, Tenant]:
    user_id = session_user_id(request)
    assert user_id is not None
    found = organization_of(session, user_id)
    if found is None:
        raise NotFoundException("You are not a member of any organization.")
    organization, membership = found
    return organization, membership, tenants.tenant_of_organization(session, organization.id)


def _status(organization: Organization, tenant: Tenant) -> TenantStatus:
    return TenantStatus(
        id=str(tenant.id),
        slug=tenant.slug,
        organization=organization.name,
        state=str(tenant.state),
        plan=tenant.plan,
        runtime_release=tenant.runtime_release,
        generation=tenant.generation,
        observed_generation=tenant.observed_generation,
        url=tenant.runtime_url,
        failure_reason=tenant.failure_reason,
        conditions=[msgspec.convert(c, Condition) for c in tenant.conditions],
    )


# Notices for the console's front page, each (session, tenant) -> text or None. Domains that
# have something to tell the organization (billing: a failed payment) register one.
ConsoleNotice = Callable[[Session, Tenant], str | None]
CONSOLE_NOTICES: list[ConsoleNotice] = []


class ConsoleController(Controller):
    path = "/console"
    guards = [require_login]
    include_in_schema = False

    @get("/", name="console", sync_to_thread=True)
    def overview(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        organization, membership, tenant = _membership(request, db_session)
        return Template(
            template_name="console.html",
            context={
                "organization": organization,
                "membership": membership,
                "tenant": tenant,
                "steps": provisioning_steps(tenant),
                "events": tenants.events(db_session, tenant.id),
                "can_retry": membership.role in (Role.OWNER, Role.ADMIN),
                "notices": [
                    text for notice in CONSOLE_NOTICES if (text := notice(db_session, tenant))
                ],
            },
        )

    @get("/progress", name="progress", sync_to_thread=True)
    def progress(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        organization, _, tenant = _membership(request, db_session)
        return Template(
            template_name="progress.html",
            context={
                "organization": organization,
                "tenant": tenant,
                "steps": provisioning_steps(tenant),
                "settled": is_settled(tenant),
            },
        )

    @get("/progress/steps", name="progress-steps", sync_to_thread=True)
    def progress_steps(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        """The live part of the progress page, polled by the page until the portal settles."""
        organization, _, tenant = _membership(request, db_session)
        return Template(
            template_name="_steps.html",
            context={
                "organization": organization,
                "tenant": tenant,
                "steps": provisioning_steps(tenant),
                "settled": is_settled(tenant),
            },
        )

    @post("/retry", name="retry", sync_to_thread=True, status_code=303)
    def retry(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect:
        _, membership, tenant = _membership(request, db_session)
        if membership.role not in (Role.OWNER, Role.ADMIN):
            raise PermissionDeniedException("Only owners and admins can retry provisioning.")
        user_id = session_user_id(request)
        tenants.retry(db_session, tenant, actor=f"user:{user_id}")
        relay_after_commit(request)
        return Redirect(path="/console/progress", status_code=303)


class TenantApiController(Controller):
    """The tenant admin API: the signed-in member's own portal."""

    path = "/api/v1/tenant"
    guards = [require_login]
    tags = ["tenant"]

    @get("/", operation_id="getTenant", sync_to_thread=True)
    def get_tenant(self, request: Request[Any, Any, Any], db_session: DbSession) -> TenantStatus:
        organization, _, tenant = _membership(request, db_session)
        return _status(organization, tenant)

    @get("/events", operation_id="listTenantEvents", sync_to_thread=True)
    def list_events(
        self, request: Request[Any, Any, Any], db_session: DbSession
    ) -> list[TenantEventOut]:
        _, _, tenant = _membership(request, db_session)
        return [
            TenantEventOut(
                at=e.created_at.isoformat(),
                from_state=str(e.from_state) if e.from_state else None,
                to_state=str(e.to_state),
                reason=e.reason,
                message=e.message,
                actor=e.actor,
            )
            for e in tenants.events(db_session, tenant.id)
        ]

    @get("/audit", operation_id="listTenantAudit", sync_to_thread=True)
    def list_audit(
        self, request: Request[Any, Any, Any], db_session: DbSession
    ) -> list[dict[str, Any]]:
        """What operators and admins did to this portal, newest first (owners and admins)."""
        _, membership, tenant = _membership(request, db_session)
        if membership.role not in (Role.OWNER, Role.ADMIN):
            raise PermissionDeniedException("Only owners and admins can read the audit log.")
        return [audit.document(e) for e in audit.entries(db_session, tenant_id=tenant.id)]
