"""The internal API runtimes call: ``/internal/v1/runtime``. Never reached by browsers."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from uuid import UUID

import anyio
import msgspec
import structlog
from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, ServiceUnavailableException
from litestar.handlers import BaseRouteHandler
from litestar.status_codes import HTTP_202_ACCEPTED

from control_plane.core.errors import DomainError
from control_plane.core.web import DbSession, plane
from control_plane.runtime_link import service
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant

log = structlog.get_logger(__name__)

TENANT_HEADER = "x-backlot-tenant"
SIGNATURE_HEADER = "x-backlot-signature"


def _claimed_tenant(connection: ASGIConnection[Any, Any, Any, Any]) -> UUID:
    raw = connection.headers.get(TENANT_HEADER, "")
    try:
        return UUID(raw)
    except ValueError:
        raise NotAuthorizedException(f"send the tenant id in the {TENANT_HEADER} header") from None


def require_runtime(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Only a runtime holding its tenant's token gets through."""
    tenant_id = _claimed_tenant(connection)
    scheme, _sep, presented = connection.headers.get("authorization", "").partition(" ")
    settings = plane(connection.app.state).settings
    if scheme.lower() != "bearer" or not service.token_matches(settings, tenant_id, presented):
        log.warning("runtime_link.refused", tenant_id=str(tenant_id), reason="bad token")
        raise NotAuthorizedException("this runtime's credentials are not valid")


def _tenant(request: Request[Any, Any, Any], db_session: DbSession) -> Tenant:
    tenant = db_session.get(Tenant, _claimed_tenant(request))
    if tenant is None or tenant.state == TenantState.DELETED:
        raise NotAuthorizedException("this runtime's tenant does not exist any more")
    return tenant


class UsageReport(msgspec.Struct, forbid_unknown_fields=True):
    period: str
    active_users: int
    provisioned_users: int
    reported_at: dt.datetime

    def __post_init__(self) -> None:
        try:
            dt.datetime.strptime(self.period, "%Y-%m")  # noqa: DTZ007 - a month, not a moment
        except ValueError:
            raise ValueError("period must be a month, YYYY-MM") from None
        if self.active_users < 0 or self.provisioned_users < 0:
            raise ValueError("user counts cannot be negative")


class SsoTestResult(msgspec.Struct):
    ok: bool
    protocol: str
    claims: dict[str, Any] = msgspec.field(default_factory=dict)
    email: str | None = None
    groups: list[str] = msgspec.field(default_factory=list)
    role: Literal["viewer", "member", "admin"] | None = None
    error: str | None = None


class RuntimeLinkController(Controller):
    path = "/internal/v1/runtime"
    guards = [require_runtime]
    include_in_schema = False
    opt = {"exclude_from_csrf": True}

    @get("/config", sync_to_thread=True)
    def config(self, request: Request[Any, Any, Any], db_session: DbSession) -> dict[str, Any]:
        tenant = _tenant(request, db_session)
        return service.config_document(db_session, plane(request.app.state).settings, tenant)

    @post("/usage", status_code=HTTP_202_ACCEPTED)
    async def usage(self, request: Request[Any, Any, Any], db_session: DbSession) -> None:
        # The signature covers the raw bytes, so the body is read before any parsing.
        body = await request.body()
        await anyio.to_thread.run_sync(self._record_usage, request, db_session, body)

    @staticmethod
    def _record_usage(request: Request[Any, Any, Any], db_session: DbSession, body: bytes) -> None:
        settings = plane(request.app.state).settings
        tenant_id = _claimed_tenant(request)
        service.verify_signature(
            service.runtime_token(settings, tenant_id),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
        )
        try:
            report = msgspec.json.decode(body, type=UsageReport)
        except msgspec.ValidationError as exc:
            raise DomainError(f"the usage report is not valid: {exc}") from None
        if service.USAGE_RECORDER is None:
            raise ServiceUnavailableException("seat counting is not configured here")
        tenant = _tenant(request, db_session)
        service.USAGE_RECORDER(db_session, tenant, msgspec.to_builtins(report))
        log.info(
            "runtime_link.usage_recorded",
            tenant_id=str(tenant.id),
            period=report.period,
            active_users=report.active_users,
        )

    @post("/sso-tests/{test_id:str}", status_code=HTTP_202_ACCEPTED, sync_to_thread=True)
    def sso_test_result(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        test_id: str,
        data: SsoTestResult,
    ) -> None:
        if service.SSO_TEST_RESULT_HANDLER is None:
            raise ServiceUnavailableException("SSO tests are not handled here")
        tenant = _tenant(request, db_session)
        service.SSO_TEST_RESULT_HANDLER(db_session, tenant, test_id, msgspec.to_builtins(data))
