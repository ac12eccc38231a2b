"""The operators' admin API under ``/admin/v1``: its own tokens and scopes, every call audited."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from uuid import UUID

import anyio
import msgspec
from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.core.database import unit_of_work
from control_plane.core.errors import NotFound
from control_plane.core.web import DbSession, plane, relay_after_commit
from control_plane.fleet import actions, releases, rollouts, views
from control_plane.fleet.actions import ACTIONS
from control_plane.fleet.operators import Operator, authenticate
from control_plane.tenants.models import Tenant

_OPERATOR = "backlot_operator"
CurrentOperator = NamedDependency[Operator]


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _required_scope(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> str:
    scope = handler.opt.get("scope", "read")
    if scope == "action":
        # The action named in the path decides: pinning a release needs "release".
        known = ACTIONS.get(str(connection.path_params.get("action", "")))
        return known.scope if known else "operate"
    return str(scope)


async def operator_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Authenticate the operator's token and check the route's scope; audit the call either way.

    The audit entry is written in its own transaction, so a refused or failed call is on
    record too.
    """
    state = plane(connection.app.state)
    token = _bearer(connection)
    scope = _required_scope(connection, handler)
    call = {
        "method": connection.scope.get("method", ""),
        "path": connection.url.path,
        "scope": scope,
    }

    def check() -> tuple[Operator | None, str]:
        with unit_of_work(state.sessions) as session:
            operator = authenticate(session, token) if token else None
            if operator is None:
                why = "no operator token" if not token else "unknown, revoked or expired token"
                audit.record(
                    session, actor="anonymous", action="admin.denied", details={**call, "why": why}
                )
                return None, why
            if scope not in operator.scopes:
                why = f"this token lacks the {scope!r} scope"
                audit.record(
                    session,
                    actor=operator.actor,
                    action="admin.denied",
                    details={**call, "why": why},
                )
                return operator, why
            audit.record(session, actor=operator.actor, action="admin.call", details=call)
            return operator, ""

    operator, why = await anyio.to_thread.run_sync(check)
    if operator is None:
        raise NotAuthorizedException(f"{why}: send Authorization: Bearer <operator token>")
    if why:
        raise PermissionDeniedException(why)
    connection.scope[_OPERATOR] = operator  # type: ignore[literal-required]


def current_operator(request: Request[Any, Any, Any]) -> Operator:
    operator: Operator = request.scope[_OPERATOR]  # type: ignore[literal-required]
    return operator


def _tenant(session: Session, ref: str) -> Tenant:
    try:
        tenant = session.get(Tenant, UUID(ref))
    except ValueError:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == ref))
    if tenant is None:
        raise NotFound(f"no tenant {ref!r} (give its id or slug)")
    return tenant


class ActionRequest(msgspec.Struct):
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class BulkRequest(msgspec.Struct):
    filter: dict[str, Any] = msgspec.field(default_factory=dict)
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    # A dry run is the default: acting on many tenants must be asked for explicitly.
    dry_run: bool = True


class ReleaseRequest(msgspec.Struct):
    version: str
    image: str
    notes: str = ""
    plugin_compatibility: dict[str, str] = msgspec.field(default_factory=dict)


class RolloutRequest(msgspec.Struct):
    release: str
    waves: list[dict[str, Any]] | None = None
    selector: dict[str, Any] = msgspec.field(default_factory=dict)
    ready_deadline_seconds: float = 600.0


class AdminController(Controller):
    """Fleet views and actions for the vendor's operators."""

    path = "/admin/v1"
    guards = [operator_guard]
    dependencies = {"operator": Provide(current_operator, sync_to_thread=False)}
    tags = ["admin"]
    security = [{"operatorToken": []}]
    # Bearer tokens are never sent by a browser on its own, so there is no request to forge.
    opt = {"exclude_from_csrf": True}

    @get("/whoami", operation_id="adminWhoAmI", sync_to_thread=True)
    def whoami(self, operator: CurrentOperator) -> dict[str, Any]:
        return {"operator": operator.subject, "scopes": sorted(operator.scopes)}

    @get("/summary", operation_id="adminFleetSummary", sync_to_thread=True)
    def summary(self, db_session: DbSession) -> dict[str, Any]:
        """Counts by state, health, release and plan; failing tenants first."""
        return views.summary(db_session)

    @get("/tenants", operation_id="adminListTenants", sync_to_thread=True)
    def list_tenants(
        self,
        *,
        db_session: DbSession,
        tenant_state: Annotated[list[str] | None, QueryParameter(name="state")] = None,
        plan: FromQuery[list[str] | None] = None,
        release: FromQuery[list[str] | None] = None,
        health: FromQuery[list[str] | None] = None,
        region: FromQuery[list[str] | None] = None,
        cohort: FromQuery[list[str] | None] = None,
        slug_contains: Annotated[str | None, QueryParameter(name="q")] = None,
        created_after: FromQuery[dt.datetime | None] = None,
        created_before: FromQuery[dt.datetime | None] = None,
        active_after: FromQuery[dt.datetime | None] = None,
        active_before: FromQuery[dt.datetime | None] = None,
        pinned: FromQuery[bool | None] = None,
        sort: FromQuery[str] = "health",
        page: FromQuery[int] = 1,
        page_size: FromQuery[int] = 50,
    ) -> dict[str, Any]:
        """Tenants matching every filter given, sorted (``-`` for descending) and paged."""
        where = views.TenantFilter.from_document(
            {
                "state": tenant_state,
                "plan": plan,
                "release": release,
                "health": health,
                "region": region,
                "cohort": cohort,
                "slug_contains": slug_contains,
                "created_after": created_after,
                "created_before": created_before,
                "active_after": active_after,
                "active_before": active_before,
                "pinned": pinned,
            }
        )
        found = views.list_tenants(db_session, where, sort=sort, page=page, page_size=page_size)
        return {
            "items": found.items,
            "total": found.total,
            "page": found.page,
            "page_size": found.page_size,
        }

    @get("/tenants/{ref:str}", operation_id="adminGetTenant", sync_to_thread=True)
    def get_tenant(self, db_session: DbSession, ref: FromPath[str]) -> dict[str, Any]:
        return views.tenant_detail(db_session, _tenant(db_session, ref))

    @post(
        "/tenants/{ref:str}/actions/{action:str}",
        operation_id="adminTenantAction",
        sync_to_thread=True,
        status_code=202,
        opt={"scope": "action"},
    )
    def act(
        self,
        *,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        operator: CurrentOperator,
        ref: FromPath[str],
        action: FromPath[str],
        data: JSONBody[ActionRequest | None] = None,
    ) -> dict[str, Any]:
        """suspend, resume, delete, restore, reconcile, set-size-tier, pin-release, set-cohort."""
        tenant = _tenant(db_session, ref)
        result = actions.act(db_session, tenant, action, operator, (data or ActionRequest()).params)
        relay_after_commit(request)
        return result

    @post(
        "/bulk/{action:str}",
        operation_id="adminBulkAction",
        sync_to_thread=True,
        status_code=200,
        opt={"scope": "action"},
    )
    def bulk(
        self,
        *,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        operator: CurrentOperator,
        action: FromPath[str],
        data: JSONBody[BulkRequest],
    ) -> dict[str, Any]:
        """One action over every tenant a filter matches; a dry run (the default) lists them."""
        where = views.TenantFilter.from_document(data.filter)
        result = actions.bulk(
            db_session, action, where, operator, data.params, dry_run=data.dry_run
        )
        if not data.dry_run:
            relay_after_commit(request)
        return result

    @get("/releases", operation_id="adminListReleases", sync_to_thread=True)
    def list_releases(self, db_session: DbSession) -> list[dict[str, Any]]:
        return [releases.document(r) for r in releases.listing(db_session)]

    @post(
        "/releases",
        operation_id="adminRegisterRelease",
        sync_to_thread=True,
        opt={"scope": "release"},
    )
    def register_release(
        self, db_session: DbSession, operator: CurrentOperator, data: JSONBody[ReleaseRequest]
    ) -> dict[str, Any]:
        release = releases.register(
            db_session,
            version=data.version,
            image=data.image,
            notes=data.notes,
            plugin_compatibility=data.plugin_compatibility,
            actor=operator.actor,
        )
        audit.record(
            db_session,
            actor=operator.actor,
            action="release.register",
            target=release.version,
            details={"image": release.image},
        )
        return releases.document(release)

    @get("/rollouts", operation_id="adminListRollouts", sync_to_thread=True)
    def list_rollouts(self, db_session: DbSession) -> list[dict[str, Any]]:
        return [rollouts.document(db_session, r) for r in rollouts.listing(db_session)]

    @post(
        "/rollouts", operation_id="adminStartRollout", sync_to_thread=True, opt={"scope": "release"}
    )
    def start_rollout(
        self, db_session: DbSession, operator: CurrentOperator, data: JSONBody[RolloutRequest]
    ) -> dict[str, Any]:
        """Plan the waves; the first wave moves on the next tick of the rollout task."""
        rollout = rollouts.start(
            db_session,
            version=data.release,
            actor=operator.actor,
            waves=data.waves,
            selector=data.selector,
            ready_deadline_seconds=data.ready_deadline_seconds,
        )
        return rollouts.document(db_session, rollout)

    @get("/rollouts/{rollout_id:uuid}", operation_id="adminGetRollout", sync_to_thread=True)
    def get_rollout(self, db_session: DbSession, rollout_id: FromPath[UUID]) -> dict[str, Any]:
        return rollouts.document(
            db_session, rollouts.get_rollout(db_session, rollout_id), with_targets=True
        )

    @post(
        "/rollouts/{rollout_id:uuid}/{verb:str}",
        operation_id="adminControlRollout",
        sync_to_thread=True,
        status_code=200,
        opt={"scope": "release"},
    )
    def control_rollout(
        self,
        db_session: DbSession,
        operator: CurrentOperator,
        rollout_id: FromPath[UUID],
        verb: FromPath[str],
    ) -> dict[str, Any]:
        """pause, resume or abort."""
        verbs = {"pause": rollouts.pause, "resume": rollouts.resume, "abort": rollouts.abort}
        if verb not in verbs:
            raise NotFound(f"no rollout verb {verb!r}; use pause, resume or abort")
        rollout = verbs[verb](db_session, rollout_id, actor=operator.actor)
        return rollouts.document(db_session, rollout)

    @get("/audit", operation_id="adminAuditLog", sync_to_thread=True)
    def audit_log(
        self,
        *,
        db_session: DbSession,
        actor: FromQuery[str | None] = None,
        tenant: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
        since: FromQuery[dt.datetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        """Newest first; by operator (``actor``), by tenant (id or slug), by action."""
        tenant_id = _tenant(db_session, tenant).id if tenant else None
        found = audit.entries(
            db_session,
            actor=actor,
            tenant_id=tenant_id,
            action=action,
            since=since,
            limit=limit,
            offset=offset,
        )
        return [audit.document(e) for e in found]
