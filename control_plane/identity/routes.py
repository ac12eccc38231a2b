"""Console login (password, TOTP, the organization's SSO), logout, the JWKS, the portal link."""

from __future__ import annotations

import time
from typing import Annotated, Any

import structlog
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.errors import DomainError
from control_plane.core.security import verify_password
from control_plane.core.web import DbSession, plane, require_login
from control_plane.identity import accounts, events, handoff, signing
from control_plane.identity.access import current_member
from control_plane.identity.models import Role, TokenPurpose, User
from control_plane.identity.service import LoginFailed, authenticate, organization_of
from control_plane.identity.sso import console_login
from control_plane.identity.sso import service as sso
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant

log = structlog.get_logger(__name__)

# A password accepted, the second factor still to come: how long it may take.
SECOND_FACTOR_WINDOW_SECONDS = 300
SSO_REQUIRED = "Your organization signs in with single sign-on: use “Continue with SSO” below."
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _safe_next(target: str) -> str:
    # Only paths on this site: never an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/console"


def _login_page(
    values: dict[str, str], errors: dict[str, str], status_code: int = 200, notice: str = ""
) -> Template:
    return Template(
        template_name="login.html",
        context={"values": values, "errors": errors, "notice": notice},
        status_code=status_code,
    )


def _enforced_tenant(session: Session, user: User) -> tuple[Tenant | None, Role | None]:
    """The user's portal when it enforces SSO, with the user's role there."""
    found = organization_of(session, user.id)
    if found is None:
        return None, None
    organization, membership = found
    try:
        tenant = tenants.tenant_of_organization(session, organization.id)
    except DomainError:
        return None, None
    if not sso.is_enforced(session, tenant.id):
        return None, None
    return tenant, membership.role


def _complete_login(
    request: Request[Any, Any, Any],
    session: Session,
    user: User,
    next_path: str,
    *,
    break_glass: bool,
    method: str,
) -> Redirect:
    accounts.record_success(session, user)
    if break_glass:
        tenant, _ = _enforced_tenant(session, user)
        if tenant is not None:
            events.record(
                session,
                tenant,
                reason="BreakGlassLogin",
                message=f"{user.email} logged in to the console with a password past enforced SSO",
                actor=f"user:{user.id}",
            )
        log.warning("login.break_glass", user_id=str(user.id))
    # A fresh session on login: nothing from before it survives.
    request.clear_session()
    request.set_session({"user_id": str(user.id)})
    log.info("login.succeeded", user_id=str(user.id), method=method)
    return Redirect(path=_safe_next(next_path), status_code=303)


def _refuse_locked(user: User) -> Template | None:
    wait = accounts.locked_for(user)
    if not wait:
        return None
    minutes = max(1, (wait + 59) // 60)
    log.info("login.locked", user_id=str(user.id))
    return _login_page(
        {"email": user.email},
        {
            "form": f"Too many failed attempts: try again in {minutes} minute"
            f"{'s' if minutes > 1 else ''}, or reset your password."
        },
        status_code=429,
    )


class LoginController(Controller):
    include_in_schema = False

    @get("/login", name="login", sync_to_thread=False)
    def login_form(
        self, next_: Annotated[str, QueryParameter(name="next")] = "/console"
    ) -> Template:
        return _login_page({"next": _safe_next(next_)}, {})

    @post("/login", sync_to_thread=True, status_code=200)
    def login(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: Form
    ) -> Template | Redirect:
        settings = plane(request.app.state).settings
        email = data.get("email", "").strip().lower()
        next_path = _safe_next(data.get("next", "/console"))
        values = {"email": email, "next": next_path}
        known = db_session.scalar(select(User).where(User.email == email))
        if known is not None and (refused := _refuse_locked(known)) is not None:
            return refused
        try:
            user = authenticate(db_session, email, data.get("password", ""))
        except LoginFailed as exc:
            log.info("login.failed")
            if known is not None:
                accounts.record_failure(db_session, settings, known)
                # The failure must count even though this answer is an error.
                db_session.commit()
            return _login_page(values, {"form": exc.message}, status_code=401)
        tenant, role = _enforced_tenant(db_session, user)
        if tenant is not None and role != Role.OWNER:
            log.info("login.refused_sso_enforced", user_id=str(user.id))
            return _login_page(values, {"form": SSO_REQUIRED}, status_code=403)
        break_glass = tenant is not None
        if user.totp_secret_encrypted:
            request.clear_session()
            request.set_session(
                {
                    "second_factor": {
                        "user_id": str(user.id),
                        "at": time.time(),
                        "next": next_path,
                        "break_glass": break_glass,
                    }
                }
            )
            return Redirect(path="/login/totp", status_code=303)
        return _complete_login(
            request, db_session, user, next_path, break_glass=break_glass, method="password"
        )

    @get("/login/totp", sync_to_thread=False)
    def totp_form(self, request: Request[Any, Any, Any]) -> Template | Redirect:
        if not request.session.get("second_factor"):
            return Redirect(path="/login")
        return Template(template_name="login_totp.html", context={"errors": {}})

    @post("/login/totp", sync_to_thread=True, status_code=200)
    def totp(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: Form
    ) -> Template | Redirect:
        settings = plane(request.app.state).settings
        pending = request.session.get("second_factor") or {}
        user = db_session.get(User, pending["user_id"]) if pending.get("user_id") else None
        if (
            user is None
            or not user.is_active
            or time.time() - float(pending.get("at", 0)) > SECOND_FACTOR_WINDOW_SECONDS
        ):
            request.set_session({})
            return _login_page({}, {"form": "That took too long; log in again."}, status_code=401)
        if (refused := _refuse_locked(user)) is not None:
            request.set_session({})
            return refused
        if not accounts.check_second_factor(db_session, settings, user, data.get("code", "")):
            accounts.record_failure(db_session, settings, user)
            db_session.commit()
            log.info("login.second_factor_failed", user_id=str(user.id))
            return Template(
                template_name="login_totp.html",
                context={"errors": {"code": "That code is not valid; try the current one."}},
                status_code=401,
            )
        return _complete_login(
            request,
            db_session,
            user,
            str(pending.get("next", "/console")),
            break_glass=bool(pending.get("break_glass")),
            method="password+totp",
        )

    @post("/login/sso", sync_to_thread=True, status_code=303)
    def sso_start(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: Form
    ) -> Template | Redirect:
        settings = plane(request.app.state).settings
        identifier = data.get("identifier", "")
        next_path = _safe_next(data.get("next", "/console"))
        try:
            url, pending = console_login.begin(db_session, settings, identifier, next_path)
        except DomainError as exc:
            return _login_page(
                {"identifier": identifier, "next": next_path},
                {"sso": exc.message},
                status_code=exc.status_code,
            )
        request.set_session({"sso_login": pending.as_session()})
        return Redirect(path=url, status_code=303)

    @get(console_login.CALLBACK_PATH, sync_to_thread=True)
    def sso_callback(
        self, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Template | Redirect:
        settings = plane(request.app.state).settings
        pending = request.session.get("sso_login")
        params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
        try:
            user, _, _, next_path = console_login.complete(db_session, settings, pending, params)
        except DomainError as exc:
            request.set_session({})
            return _login_page({}, {"sso": exc.message}, status_code=exc.status_code)
        return _complete_login(
            request, db_session, user, next_path, break_glass=False, method="sso"
        )

    @get("/login/forgot", sync_to_thread=False)
    def forgot_form(self) -> Template:
        return Template(template_name="login_forgot.html", context={"sent": False})

    @post("/login/forgot", sync_to_thread=True, status_code=200)
    def forgot(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: Form
    ) -> Template:
        settings = plane(request.app.state).settings
        accounts.request_password_reset(db_session, settings, data.get("email", ""))
        return Template(template_name="login_forgot.html", context={"sent": True})

    @get("/login/reset", sync_to_thread=True)
    def reset_form(
        self, db_session: DbSession, token: Annotated[str, QueryParameter()] = ""
    ) -> Template:
        try:
            accounts.peek_token(db_session, token, TokenPurpose.RESET_PASSWORD)
        except DomainError as exc:
            return Template(
                template_name="login_reset.html",
                context={"token": "", "errors": {"form": exc.message}},
                status_code=400,
            )
        return Template(template_name="login_reset.html", context={"token": token, "errors": {}})

    @post("/login/reset", sync_to_thread=True, status_code=200)
    def reset(self, db_session: DbSession, data: Form) -> Template:
        token = data.get("token", "")
        try:
            accounts.reset_password(db_session, token, data.get("password", ""))
        except DomainError as exc:
            errors = getattr(exc, "errors", None) or {"form": exc.message}
            return Template(
                template_name="login_reset.html",
                context={"token": token, "errors": errors},
                status_code=exc.status_code,
            )
        return _login_page({}, {}, notice="Your password is changed; log in with it.")

    @post("/logout", sync_to_thread=False, status_code=303)
    def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        request.clear_session()
        return Redirect(path="/login", status_code=303)


class AccountController(Controller):
    """``/account``: the signed-in user's address verification and second factor."""

    path = "/account"
    guards = [require_login]
    include_in_schema = False

    @staticmethod
    def _page(
        request: Request[Any, Any, Any],
        session: Session,
        *,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        member = current_member(request, session)
        return Template(
            template_name="account.html",
            context={
                "user": member.user,
                "organization": member.organization,
                "errors": {},
                **context,
            },
            status_code=status_code,
        )

    @get("/", name="account", sync_to_thread=True)
    def account(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        return self._page(request, db_session)

    @post("/verify-email", sync_to_thread=True, status_code=200)
    def send_verification(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        settings = plane(request.app.state).settings
        member = current_member(request, db_session)
        if member.user.email_verified_at is None:
            accounts.send_verification(db_session, settings, member.user)
        return self._page(request, db_session, notice=f"We sent a link to {member.user.email}.")

    @get("/verify-email", sync_to_thread=True, guards=[])
    def verify_email(
        self, db_session: DbSession, token: Annotated[str, QueryParameter()] = ""
    ) -> Template:
        # Opened from the mail, perhaps in another browser: the token is the proof.
        try:
            user = accounts.verify_email(db_session, token)
        except DomainError as exc:
            return Template(
                template_name="account_verified.html",
                context={"error": exc.message, "email": None},
                status_code=exc.status_code,
            )
        return Template(
            template_name="account_verified.html", context={"error": None, "email": user.email}
        )

    @post("/totp/start", sync_to_thread=True, status_code=200)
    def totp_start(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        member = current_member(request, db_session)
        secret = accounts.new_totp_secret()
        # The secret waits in the (encrypted) session cookie until a first code confirms it.
        request.session["totp_pending"] = secret
        return self._page(
            request,
            db_session,
            totp_secret=secret,
            totp_uri=accounts.provisioning_uri(secret, member.user.email),
        )

    @post("/totp/confirm", sync_to_thread=True, status_code=200)
    def totp_confirm(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: Form
    ) -> Template:
        settings = plane(request.app.state).settings
        member = current_member(request, db_session)
        secret = request.session.get("totp_pending")
        if not secret:
            return self._page(
                request, db_session, errors={"code": "Start the setup again."}, status_code=409
            )
        try:
            codes = accounts.enable_totp(
                db_session, settings, member.user, str(secret), data.get("code", "")
            )
        except DomainError as exc:
            return self._page(
                request,
                db_session,
                errors={"code": exc.message},
                totp_secret=secret,
                totp_uri=accounts.provisioning_uri(str(secret), member.user.email),
                status_code=exc.status_code,
            )
        request.session.pop("totp_pending", None)
        log.info("account.totp_enabled", user_id=str(member.user.id))
        return self._page(request, db_session, recovery_codes=codes)

    @post("/totp/disable", sync_to_thread=True, status_code=200)
    def totp_disable(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: Form
    ) -> Template:
        settings = plane(request.app.state).settings
        member = current_member(request, db_session)
        user = member.user
        if not (
            user.password_hash
            and verify_password(user.password_hash, data.get("password", ""))
            and accounts.check_second_factor(db_session, settings, user, data.get("code", ""))
        ):
            return self._page(
                request,
                db_session,
                errors={"disable": "Give your password and a current code to turn TOTP off."},
                status_code=403,
            )
        accounts.disable_totp(db_session, user)
        log.info("account.totp_disabled", user_id=str(user.id))
        return self._page(request, db_session, notice="Two-factor login is off.")


class JwksController(Controller):
    """The control plane's public signing keys, for runtimes (and later, entitlement checks)."""

    include_in_schema = False

    @get("/.well-known/jwks.json", sync_to_thread=True)
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
