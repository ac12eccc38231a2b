"""Console login and logout."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from control_plane.core.web import DbSession, plane, require_login
from control_plane.identity import events, handoff, signing
from control_plane.identity.access import current_member
from control_plane.identity.models import Role
from control_plane.identity.service import LoginFailed, authenticate
from control_plane.identity.sso import service as sso
from control_plane.tenants.lifecycle import TenantState

log = structlog.get_logger(__name__)


def _safe_next(target: str) -> str:
    # Only paths on this site: never an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/console"


class LoginController(Controller):
    include_in_schema = False

    @get("/login", name="login", sync_to_thread=False)
    def login_form(
        self, next_: Annotated[str, QueryParameter(name="next")] = "/console"
    ) -> Template:
        context = {"values": {"next": _safe_next(next_)}, "errors": {}}
        return Template(template_name="login.html", context=context)

    @post("/login", sync_to_thread=True, status_code=200)
    def login(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        email = data.get("email", "")
        try:
            user = authenticate(db_session, email, data.get("password", ""))
        except LoginFailed as exc:
            log.info("login.failed")
            return Template(
                template_name="login.html",
                context={
                    "values": {"email": email, "next": data.get("next", "")},
                    "errors": {"form": exc.message},
                },
                status_code=401,
            )
        # A fresh session on login: nothing from before it survives.
        request.clear_session()
        request.set_session({"user_id": str(user.id)})
        log.info("login.succeeded", user_id=str(user.id))
        return Redirect(path=_safe_next(data.get("next", "/console")), status_code=303)

    @post("/logout", sync_to_thread=False, status_code=303)
    def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        request.clear_session()
        return Redirect(path="/login", status_code=303)


class JwksController(Controller):
    """The control plane's public signing keys, for runtimes (and later, entitlement checks)."""

    include_in_schema = False

    @get("/.well-known/jwks.json", sync_to_thread=True, cache=60)
    def jwks(self, request: Request[Any, Any, Any], db_session: DbSession) -> dict[str, Any]:
        settings = plane(request.app.state).settings
        # A runtime may ask before the first ticket was ever signed: have a key to publish.
        signing.active_key(db_session, settings)
        return signing.jwks(db_session, settings=settings)


class PortalController(Controller):
    """``/console/portal``: into the portal with a handoff ticket (contract §2)."""

    guards = [require_login]
    include_in_schema = False

    @get("/console/portal", name="portal", sync_to_thread=True)
    def portal(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect | Template:
        settings = plane(request.app.state).settings
        member = current_member(request, db_session)
        tenant = member.tenant
        if not tenant.runtime_url or tenant.state != TenantState.ACTIVE:
            return Template(
                template_name="login_portal_unavailable.html",
                context={"tenant": tenant, "organization": member.organization},
                status_code=409,
            )
        break_glass = False
        if sso.is_enforced(db_session, tenant.id):
            if member.membership.role != Role.OWNER:
                # Enforced SSO: everyone but the owners signs in at the identity provider.
                return Redirect(path=f"{tenant.runtime_url.rstrip('/')}/auth/login")
            break_glass = True
            events.record(
                db_session,
                tenant,
                reason="BreakGlassPortal",
                message=f"{member.user.email} entered the portal past enforced SSO",
                actor=member.actor,
            )
            log.warning("portal.break_glass", tenant_id=str(tenant.id), user_id=str(member.user.id))
        claims = handoff.ticket_claims(
            settings, tenant, member.user, member.membership.role, break_glass=break_glass
        )
        ticket = handoff.issue(db_session, settings, claims)
        log.info("portal.handoff", tenant_id=str(tenant.id), user_id=str(member.user.id))
        return Redirect(path=handoff.runtime_link(tenant, "/auth/handoff", ticket))
