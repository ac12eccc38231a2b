"""The public pages: landing, signup form, slug check."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import stripe
import structlog
from kombu import Connection
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from billing import catalog
from billing import service as billing
from billing.gateway import StripeGateway
from control_plane.core.errors import ValidationFailed
from control_plane.core.web import DbSession, plane, relay_after_commit
from control_plane.identity.models import Organization, User
from control_plane.signup import service
from control_plane.signup.service import PLANS, SignupForm
from control_plane.tenants.models import Tenant

log = structlog.get_logger(__name__)


def _form_context(
    state: State, values: dict[str, str], errors: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "base_domain": plane(state).settings.base_domain,
        "values": values,
        "errors": errors or {},
        "plans": PLANS,
        "catalog": catalog.PLANS,
        "available_plans": service.available_plans(plane(state).settings.billing_enabled),
    }


def broker_reachable(broker_url: str, timeout: float) -> bool:
    """Whether provisioning can be queued right now; signups wait for it rather than pile up."""
    try:
        with Connection(broker_url, connect_timeout=timeout) as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, timeout=max(1, round(timeout))
            )
    except Exception:
        return False
    return True


class SignupController(Controller):
    tags = ["signup"]
    include_in_schema = False

    @get("/", name="landing", sync_to_thread=False)
    def landing(self) -> Template:
        return Template(template_name="landing.html", context={})

    @get("/signup", name="signup", sync_to_thread=False)
    def signup_form(self, state: State) -> Template:
        return Template(
            template_name="signup.html",
            context=_form_context(
                state, {"plan": "free", "signup_token": secrets.token_urlsafe(24)}
            ),
        )

    @get("/signup/slug", operation_id="checkSlug", include_in_schema=True, sync_to_thread=True)
    def check_slug(
        self, db_session: DbSession, name: FromQuery[str] = "", slug: FromQuery[str] = ""
    ) -> dict[str, Any]:
        """Suggest an address from the organization's name, or say whether one is free."""
        candidate = slug.strip().lower() or service.suggest_slug(name)
        problem = service.slug_problem(db_session, candidate) if candidate else "Type an address."
        return {"slug": candidate, "available": problem is None, "message": problem or "Available."}

    @staticmethod
    def _resubmitted(
        request: Request[Any, Any, Any], db_session: Session, signup_token: str
    ) -> Redirect | None:
        """The same form sent again: its first signup's progress, nothing new created.

        The browser may never have seen the first answer (and its session cookie), so the
        owner is signed in again on the strength of the form's one-time token.
        """
        earlier = service.previous_signup(db_session, signup_token) if signup_token else None
        if earlier is None:
            return None
        _, owner_id = earlier
        request.set_session({"user_id": str(owner_id)})
        return Redirect(path="/console/progress", status_code=303)

    @staticmethod
    def _checkout(
        request: Request[Any, Any, Any],
        state: State,
        db_session: Session,
        *,
        user: User,
        tenant: Tenant,
        values: dict[str, str],
    ) -> Template | Redirect:
        """A paid signup goes on to Stripe Checkout; the portal waits for the payment."""
        settings = plane(state).settings
        account = billing.account_of_tenant(db_session, tenant.id)
        organization = db_session.get(Organization, tenant.organization_id)
        assert account is not None
        assert organization is not None
        try:
            checkout = billing.start_checkout(
                db_session,
                settings,
                StripeGateway(settings),
                account,
                organization=organization,
                email=user.email,
            )
        except stripe.StripeError as exc:
            # Nothing is kept: an error response rolls the signup back.
            log.warning("signup.checkout_failed", error=type(exc).__name__)
            return Template(
                template_name="signup.html",
                context=_form_context(
                    state,
                    values,
                    {
                        "form": "We could not reach our payment provider, so nothing was "
                        "created. Please try again in a few minutes."
                    },
                ),
                status_code=503,
            )
        request.set_session({"user_id": str(user.id)})
        log.info("signup.awaiting_payment", tenant_id=str(tenant.id), slug=tenant.slug)
        return Redirect(path=checkout.url, status_code=303)

    @post("/signup", sync_to_thread=True, status_code=200)
    def signup(
        self,
        request: Request[Any, Any, Any],
        state: State,
        db_session: DbSession,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        settings = plane(state).settings
        form = SignupForm(
            organization_name=data.get("organization_name", ""),
            slug=data.get("slug", ""),
            email=data.get("email", ""),
            password=data.get("password", ""),
            plan=data.get("plan", "free"),
            signup_token=data.get("signup_token", ""),
        )
        values = {k: v for k, v in data.items() if k != "password"}

        resubmitted = self._resubmitted(request, db_session, form.signup_token)
        if resubmitted is not None:
            return resubmitted

        if not broker_reachable(
            settings.resolved_broker_url, settings.broker_check_timeout_seconds
        ):
            log.warning("signup.broker_unavailable")
            return Template(
                template_name="signup.html",
                context=_form_context(
                    state,
                    values,
                    {
                        "form": "We cannot start provisioning right now, so nothing was created. "
                        "Please try again in a few minutes."
                    },
                ),
                status_code=503,
            )
        try:
            user, tenant = service.register(
                db_session,
                form,
                runtime_release=settings.runtime_release,
                billing_enabled=settings.billing_enabled,
            )
        except ValidationFailed as exc:
            # Two submits of one form at the same moment: the loser joins the winner.
            resubmitted = self._resubmitted(request, db_session, form.signup_token)
            if resubmitted is not None:
                return resubmitted
            return Template(
                template_name="signup.html",
                context=_form_context(state, values, exc.errors),
                status_code=422,
            )

        if billing.account_of_tenant(db_session, tenant.id) is not None:
            return self._checkout(
                request, state, db_session, user=user, tenant=tenant, values=values
            )

        relay_after_commit(request)
        request.set_session({"user_id": str(user.id)})
        log.info("signup.accepted", tenant_id=str(tenant.id), slug=tenant.slug)
        return Redirect(path="/console/progress", status_code=303)
