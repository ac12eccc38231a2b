"""The portal's sign-in routes: SSO (OIDC, SAML), the console handoff, logout."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie, State
from litestar.params import Parameter
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenant_runtime.auth.config import LoginConfig, SsoConfig, role_for_groups
from tenant_runtime.auth.errors import AuthError
from tenant_runtime.auth.handoff import consume_ticket, verify_ticket
from tenant_runtime.auth.middleware import session_cookie_of
from tenant_runtime.auth.models import Group, GroupMembership, LoginAttempt
from tenant_runtime.auth.principal import Principal
from tenant_runtime.auth.service import (
    SESSION_COOKIE,
    as_utc,
    end_session,
    open_session,
    sign_in_user,
    user_by_email,
    utcnow,
)

logger = structlog.get_logger(__name__)

LOGIN_COOKIE = "backlot_login"
LOGIN_ATTEMPT_LIFETIME = timedelta(minutes=10)


def auth_error_response(request: Request[Any, Any, Any], error: Exception) -> Template:
    """The person reads what to do; the admin's log line says exactly what was refused."""
    assert isinstance(error, AuthError)
    logger.warning(
        error.log_event,
        status_code=error.status_code,
        path=request.url.path,
        **error.log_fields,
    )
    return Template(
        template_name="auth/error.html",
        context={
            "organization_name": request.app.state.settings.organization_name,
            "message": error.message,
        },
        status_code=error.status_code,
    )


def _session_cookie(state: State, value: str, *, max_age: int | None) -> Cookie:
    settings = state.settings
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        path="/",
        httponly=True,
        secure=settings.portal_url.startswith("https://"),
        samesite="lax",
        max_age=max_age,
    )


def _signed_in(state: State, cookie_value: str, target: str = "/") -> Redirect:
    absolute = int(state.session_policy.absolute.total_seconds())
    return Redirect(target, cookies=[_session_cookie(state, cookie_value, max_age=absolute)])


def live_config(state: State) -> SsoConfig | None:
    config: SsoConfig | None = state.sso_state.sso
    return config if config is not None and config.enabled else None


def scim_groups_of(session: Session, email: str) -> list[str]:
    user = user_by_email(session, email)
    if user is None:
        return []
    return list(
        session.scalars(
            select(Group.display_name)
            .join(GroupMembership, GroupMembership.group_id == Group.id)
            .where(GroupMembership.user_id == user.id)
        )
    )


def begin_login(
    state: State, db_session: Session, config: LoginConfig, *, sso_test_id: str | None = None
) -> Redirect:
    """Send the browser to the identity provider, remembering what must come back."""
    portal = state.settings.portal_url
    expires = utcnow() + LOGIN_ATTEMPT_LIFETIME
    if config.protocol == "oidc":
        if config.oidc is None:
            raise AuthError(
                "Single sign-on is not fully configured; ask your administrator.",
                status_code=503,
                log_event="sso.oidc_section_missing",
            )
        url, login_state, nonce, verifier = state.oidc_client.authorization_url(
            config.oidc, f"{portal}/auth/oidc/callback"
        )
        db_session.add(
            LoginAttempt(
                state=login_state,
                protocol="oidc",
                nonce=nonce,
                code_verifier=verifier,
                sso_test_id=sso_test_id,
                config_version=config.version,
                expires_at=expires,
            )
        )
        db_session.flush()
        logger.info("login.started", protocol="oidc", sso_test=sso_test_id is not None)
        # Binds the callback to this browser: a code injected into another browser fails.
        cookie = Cookie(
            key=LOGIN_COOKIE,
            value=login_state,
            path="/auth",
            httponly=True,
            secure=portal.startswith("https://"),
            samesite="lax",
            max_age=int(LOGIN_ATTEMPT_LIFETIME.total_seconds()),
        )
        return Redirect(url, cookies=[cookie])
    from tenant_runtime.auth.saml import begin_saml_login  # noqa: PLC0415

    return begin_saml_login(state, db_session, config, sso_test_id=sso_test_id)


def take_attempt(db_session: Session, login_state: str, protocol: str) -> LoginAttempt:
    attempt = db_session.get(LoginAttempt, login_state) if login_state else None
    if attempt is None or attempt.protocol != protocol:
        raise AuthError(
            "This sign-in was not started here, or was already completed; start again.",
            log_event="login.unknown_state",
            protocol=protocol,
        )
    db_session.delete(attempt)
    db_session.flush()
    if as_utc(attempt.expires_at) <= utcnow():
        raise AuthError(
            "This sign-in took too long; start again.",
            log_event="login.attempt_expired",
            protocol=protocol,
        )
    return attempt


def config_for_attempt(state: State, attempt: LoginAttempt) -> LoginConfig:
    sso: SsoConfig | None = state.sso_state.sso
    if attempt.sso_test_id is not None:
        if sso is None or sso.draft is None:
            raise AuthError(
                "The configuration under test was removed; start the test again.",
                status_code=409,
                log_event="sso_test.draft_gone",
                test_id=attempt.sso_test_id,
            )
        return sso.draft
    if sso is None or not sso.enabled:
        raise AuthError(
            "Single sign-on was turned off for this portal.",
            status_code=403,
            log_event="login.sso_disabled",
        )
    if sso.version != attempt.config_version:
        logger.info("login.config_changed", started=attempt.config_version, now=sso.version)
    return sso


def complete_login(
    state: State,
    db_session: Session,
    config: LoginConfig,
    attempt: LoginAttempt,
    *,
    protocol: str,
    email: str,
    name: str | None,
    groups: list[str],
    claims: dict[str, Any],
    id_token: str | None = None,
) -> Redirect:
    """Either finish a test of the draft (report it, back to the console) or sign the user in."""
    role = role_for_groups(config, groups + scim_groups_of(db_session, email))
    if attempt.sso_test_id is not None:
        report_sso_test(
            state,
            attempt.sso_test_id,
            {
                "ok": True,
                "protocol": protocol,
                "claims": claims,
                "email": email,
                "groups": groups,
                "role": role,
                "error": None,
            },
        )
        return Redirect(console_test_url(state, attempt.sso_test_id))
    user = sign_in_user(db_session, email=email, name=name, role=role, source="sso")
    cookie = open_session(
        db_session, user, state.session_policy, method=protocol, id_token=id_token
    )
    logger.info("login.succeeded", protocol=protocol, user_id=user.id, role=role)
    return _signed_in(state, cookie)


def report_sso_test(state: State, test_id: str, result: dict[str, Any]) -> None:
    from tenant_runtime.uplink.client import UplinkError  # noqa: PLC0415

    try:
        state.uplink.post_sso_test_result(test_id, result)
    except UplinkError as error:
        logger.error("sso_test.report_failed", test_id=test_id, error=str(error))
        raise AuthError(
            "The test result could not be sent to the console; run the test again.",
            status_code=502,
            log_event="sso_test.report_failed",
            test_id=test_id,
        ) from error
    logger.info("sso_test.reported", test_id=test_id, ok=result["ok"])


def console_test_url(state: State, test_id: str) -> str:
    issuer = state.sso_state.control_plane_issuer or ""
    return f"{issuer.rstrip('/')}/console/sso?{urlencode({'test': test_id})}"


class AuthController(Controller):
    path = "/auth"
    include_in_schema = False
    exception_handlers = {AuthError: auth_error_response}

    @get("/login", sync_to_thread=False)
    def login_page(self, state: State) -> Template:
        sso = state.sso_state.sso
        return Template(
            template_name="auth/login.html",
            context={
                "organization_name": state.settings.organization_name,
                "sso_enabled": sso is not None and sso.enabled,
                "handoff_allowed": sso is None or not (sso.enabled and sso.enforced),
            },
        )

    @get("/me", sync_to_thread=False)
    def me(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        principal = request.scope.get("principal")
        if not isinstance(principal, Principal):
            raise AuthError("You are not signed in.", log_event="session.absent")
        return {
            "kind": principal.kind,
            "subject": principal.subject,
            "email": principal.email,
            "name": principal.name,
            "role": principal.role,
        }

    @get("/sso/start", sync_to_thread=True)
    def sso_start(self, state: State, db_session: Session) -> Redirect:
        config = live_config(state)
        if config is None:
            raise AuthError(
                "Single sign-on is not enabled for this portal; open it from your Backlot "
                "console instead.",
                status_code=404,
                log_event="login.sso_disabled",
            )
        return begin_login(state, db_session, config)

    @get("/oidc/callback", sync_to_thread=True)
    def oidc_callback(
        self,
        *,
        request: Request[Any, Any, Any],
        state: State,
        db_session: Session,
        login_state: Annotated[str, Parameter(query="state")] = "",
        code: str = "",
        error: str = "",
        error_description: str = "",
    ) -> Redirect:
        attempt = take_attempt(db_session, login_state, "oidc")
        config = config_for_attempt(state, attempt)
        try:
            if request.cookies.get(LOGIN_COOKIE) != attempt.state:
                raise AuthError(
                    "This sign-in was started in another browser; start again here.",
                    log_event="login.state_cookie_mismatch",
                    protocol="oidc",
                )
            if error or not code:
                raise AuthError(
                    f"Your identity provider refused the sign-in: {error or 'no code'}."
                    + (f" {error_description[:200]}" if error_description else ""),
                    status_code=403,
                    log_event="oidc.provider_error",
                    error=error[:100],
                )
            assert config.oidc is not None
            assert attempt.nonce is not None
            assert attempt.code_verifier is not None
            identity = state.oidc_client.finish(
                config.oidc,
                redirect_uri=f"{state.settings.portal_url}/auth/oidc/callback",
                code=code,
                code_verifier=attempt.code_verifier,
                nonce=attempt.nonce,
            )
        except AuthError as refusal:
            return self._fail_test(state, attempt, "oidc", refusal)
        return complete_login(
            state,
            db_session,
            config,
            attempt,
            protocol="oidc",
            email=identity.email,
            name=identity.name,
            groups=identity.groups,
            claims=identity.claims,
            id_token=identity.id_token,
        )

    def _fail_test(
        self, state: State, attempt: LoginAttempt, protocol: str, refusal: AuthError
    ) -> Redirect:
        if attempt.sso_test_id is None:
            raise refusal
        logger.warning(refusal.log_event, sso_test=True, **refusal.log_fields)
        report_sso_test(
            state,
            attempt.sso_test_id,
            {
                "ok": False,
                "protocol": protocol,
                "claims": {},
                "email": None,
                "groups": [],
                "role": None,
                "error": refusal.message,
            },
        )
        return Redirect(console_test_url(state, attempt.sso_test_id))

    @get("/handoff", sync_to_thread=True)
    def handoff(self, state: State, db_session: Session, ticket: str = "") -> Redirect:
        claims = verify_ticket(
            ticket,
            state=state.sso_state,
            key_sets=state.key_sets,
            tenant_id=state.settings.tenant_id,
            leeway=state.settings.auth_clock_skew_seconds,
        )
        if "sso_test" in claims:
            raise AuthError(
                "This link starts an SSO test; open it from the console's SSO page.",
                status_code=400,
                log_event="handoff.test_ticket_at_handoff",
            )
        sso = state.sso_state.sso
        if sso is not None and sso.enabled and sso.enforced:
            if claims.get("break_glass") is not True:
                raise AuthError(
                    "This portal requires single sign-on; sign in with your organization's "
                    "identity provider.",
                    status_code=403,
                    log_event="handoff.refused_sso_enforced",
                    sub=claims.get("sub"),
                )
            logger.warning("handoff.break_glass", sub=claims.get("sub"))
        consume_ticket(db_session, claims)
        user = sign_in_user(
            db_session,
            email=claims["email"],
            name=claims.get("name"),
            role=claims["role"],
            source="handoff",
        )
        cookie = open_session(db_session, user, state.session_policy, method="handoff")
        logger.info("login.succeeded", protocol="handoff", user_id=user.id, role=user.role)
        return _signed_in(state, cookie)

    @get("/sso/test", sync_to_thread=True)
    def sso_test(self, state: State, db_session: Session, ticket: str = "") -> Redirect:
        claims = verify_ticket(
            ticket,
            state=state.sso_state,
            key_sets=state.key_sets,
            tenant_id=state.settings.tenant_id,
            leeway=state.settings.auth_clock_skew_seconds,
        )
        test_id = claims.get("sso_test")
        if not isinstance(test_id, str) or not test_id or claims.get("role") != "admin":
            raise AuthError(
                "This link does not start an SSO test; start it from the console's SSO page.",
                status_code=400,
                log_event="sso_test.bad_ticket",
            )
        consume_ticket(db_session, claims)
        state.uplink.refresh_now()
        sso = state.sso_state.sso
        if sso is None or sso.draft is None:
            raise AuthError(
                "There is no SSO configuration to test; save one in the console first.",
                status_code=409,
                log_event="sso_test.no_draft",
                test_id=test_id,
            )
        logger.info("sso_test.started", test_id=test_id, version=sso.draft.version)
        return begin_login(state, db_session, sso.draft, sso_test_id=test_id)

    @get("/logout", sync_to_thread=True)
    def logout(
        self, request: Request[Any, Any, Any], state: State, db_session: Session
    ) -> Redirect:
        return self._logout(request, state, db_session)

    @post("/logout", sync_to_thread=True, status_code=303)
    def logout_post(
        self, request: Request[Any, Any, Any], state: State, db_session: Session
    ) -> Redirect:
        return self._logout(request, state, db_session)

    def _logout(
        self, request: Request[Any, Any, Any], state: State, db_session: Session
    ) -> Redirect:
        cookie = session_cookie_of(request.scope)
        ended = None if cookie is None else end_session(db_session, cookie, state.session_policy)
        target = "/auth/login"
        sso = live_config(state)
        if ended is not None and ended.id_token and sso is not None and sso.oidc is not None:
            # RP-initiated logout: also end the provider's session when it offers that.
            try:
                discovery = state.oidc_client.discover(sso.oidc.issuer)
            except AuthError:
                discovery = None
            if discovery is not None and discovery.end_session_endpoint:
                query = urlencode(
                    {
                        "id_token_hint": ended.id_token,
                        "post_logout_redirect_uri": f"{state.settings.portal_url}/auth/login",
                        "client_id": sso.oidc.client_id,
                    }
                )
                target = f"{discovery.end_session_endpoint}?{query}"
        expired = _session_cookie(state, "", max_age=0)
        return Redirect(target, cookies=[expired])
