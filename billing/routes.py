"""Billing over HTTP: the Stripe webhook, the tenant admin's billing pages and API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import anyio
import msgspec
import stripe
import structlog
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from billing import inbox, seats, service
from billing.catalog import PLANS, Plan
from billing.gateway import BillingNotConfigured, BillingUnavailable, StripeGateway
from billing.models import BillingAccount
from control_plane.core.database import unit_of_work
from control_plane.core.errors import ValidationFailed
from control_plane.core.web import (
    DbSession,
    plane,
    relay_after_commit,
    require_login,
    session_user_id,
)
from control_plane.identity.models import Membership, Organization, Role, User
from control_plane.identity.service import organization_of
from control_plane.tenants import service as tenants
from control_plane.tenants.models import Tenant

log = structlog.get_logger(__name__)


class StripeWebhookController(Controller):
    path = "/webhooks/stripe"
    include_in_schema = False

    @post("/", status_code=200)
    async def receive(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        """Verify the raw body, store the event once, answer at once; a worker handles it."""
        settings = plane(state).settings
        payload = await request.body()
        header = request.headers.get("stripe-signature")
        try:
            event = inbox.verify(settings, payload, header)
        except inbox.SignatureRejected as exc:
            # Neither the body nor the header is logged: both are attacker-controlled.
            log.warning("billing.webhook_rejected", reason=exc.message, size=len(payload))
            return Response({"detail": exc.message}, status_code=400, media_type=MediaType.JSON)

        def _store() -> bool:
            with unit_of_work(plane(state).sessions) as session:
                _, created = inbox.store(session, event)
            return created

        created = await anyio.to_thread.run_sync(_store)
        if created:
            relay_after_commit(request)
        log.info(
            "billing.webhook_received", event_id=event["id"], type=event.get("type"), new=created
        )
        return Response({"received": True, "duplicate": not created}, media_type=MediaType.JSON)


class PlanOut(msgspec.Struct):
    key: str
    name: str
    seat_price_cents: int
    included_seats: int
    size_tier: str
    features: list[str]
    premium_plugins: list[str]


class InvoiceOut(msgspec.Struct):
    id: str
    number: str | None
    status: str | None
    amount_due: int
    amount_paid: int
    currency: str
    created: str
    url: str | None


class BillingOut(msgspec.Struct):
    plan: PlanOut
    billing_configured: bool
    status: str
    seats_used: int
    seats_provisioned: int
    seats_included: int
    seats_billed: int
    # What the renewal will bill if usage stays as it is: a decrease waits for the renewal.
    seats_next_period: int
    current_period_end: str | None
    cancel_at_period_end: bool
    grace_ends_at: str | None
    retention_ends_at: str | None
    notice: str | None
    payment_message: str | None


def _plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        key=plan.key,
        name=plan.name,
        seat_price_cents=plan.seat_price_cents,
        included_seats=plan.included_seats,
        size_tier=plan.size_tier,
        features=list(plan.features),
        premium_plugins=list(plan.premium_plugins),
    )


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _context(
    request: Request[Any, Any, Any], session: Session
) -> tuple[Organization, Membership, Tenant, BillingAccount | None]:
    user_id = session_user_id(request)
    assert user_id is not None
    found = organization_of(session, user_id)
    if found is None:
        raise NotFoundException("You are not a member of any organization.")
    organization, membership = found
    tenant = tenants.tenant_of_organization(session, organization.id)
    return organization, membership, tenant, service.account_of_tenant(session, tenant.id)


def _require_admin(membership: Membership) -> None:
    if membership.role not in (Role.OWNER, Role.ADMIN):
        raise PermissionDeniedException("Only owners and admins can manage billing.")


def _billing(
    settings_configured: bool, tenant: Tenant, account: BillingAccount | None
) -> BillingOut:
    plan = PLANS[account.plan if account else tenant.plan]
    used = account.active_users if account else 0
    return BillingOut(
        plan=_plan_out(plan),
        billing_configured=settings_configured,
        status=account.status if account else "free",
        seats_used=used,
        seats_provisioned=account.provisioned_users if account else 0,
        seats_included=plan.included_seats,
        seats_billed=account.quantity if account else 0,
        seats_next_period=seats.seats_next_period(account) if account else 0,
        current_period_end=_iso(account.current_period_end) if account else None,
        cancel_at_period_end=account.cancel_at_period_end if account else False,
        grace_ends_at=_iso(account.grace_ends_at) if account else None,
        retention_ends_at=_iso(account.retention_ends_at) if account else None,
        notice=account.notice if account else None,
        payment_message=account.payment_message if account else None,
    )


def _gateway(state: State) -> StripeGateway:
    return StripeGateway(plane(state).settings)


def _stripe_call_failed(exc: stripe.StripeError) -> BillingUnavailable:
    log.warning("billing.stripe_call_failed", error=type(exc).__name__, code=exc.code)
    return BillingUnavailable("Stripe could not be reached just now; please try again shortly.")


class BillingApiController(Controller):
    path = "/api/v1/tenant/billing"
    guards = [require_login]
    tags = ["tenant"]

    @get("/", operation_id="getTenantBilling", sync_to_thread=True)
    def get_billing(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> BillingOut:
        """Plan, seats used, included and billed, and where the subscription stands."""
        _, _, tenant, account = _context(request, db_session)
        return _billing(plane(state).settings.billing_enabled, tenant, account)

    @get("/invoices", operation_id="listTenantInvoices", sync_to_thread=True)
    def list_invoices(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> list[InvoiceOut]:
        _, membership, _, account = _context(request, db_session)
        _require_admin(membership)
        if account is None or account.customer_id is None:
            return []
        try:
            invoices = _gateway(state).list_invoices(account.customer_id)
        except stripe.StripeError as exc:
            raise _stripe_call_failed(exc) from exc
        return [_invoice_out(i) for i in invoices]


def _invoice_out(invoice: dict[str, Any]) -> InvoiceOut:
    return InvoiceOut(
        id=str(invoice["id"]),
        number=invoice.get("number"),
        status=invoice.get("status"),
        amount_due=int(invoice.get("amount_due") or 0),
        amount_paid=int(invoice.get("amount_paid") or 0),
        currency=str(invoice.get("currency") or "usd"),
        created=dt.datetime.fromtimestamp(int(invoice.get("created") or 0), dt.UTC).isoformat(),
        url=invoice.get("hosted_invoice_url"),
    )


class BillingConsoleController(Controller):
    path = "/console/billing"
    guards = [require_login]
    include_in_schema = False

    @get("/", name="billing", sync_to_thread=True)
    def page(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Template:
        organization, membership, tenant, account = _context(request, db_session)
        settings = plane(state).settings
        invoices: list[InvoiceOut] = []
        upcoming: dict[str, Any] | None = None
        stripe_problem = None
        if account is not None and account.customer_id and settings.billing_enabled:
            gateway = _gateway(state)
            try:
                invoices = [_invoice_out(i) for i in gateway.list_invoices(account.customer_id)]
                if account.subscription_id and account.status in service.PAYING:
                    upcoming = gateway.preview_invoice(account.customer_id, account.subscription_id)
            except stripe.StripeError as exc:
                log.warning("billing.console_stripe_failed", error=type(exc).__name__)
                stripe_problem = "Invoices could not be loaded from Stripe just now."
        return Template(
            template_name="billing.html",
            context={
                "organization": organization,
                "tenant": tenant,
                "account": account,
                "billing": _billing(settings.billing_enabled, tenant, account),
                "plans": [p for p in PLANS.values() if p.paid],
                "invoices": invoices,
                "upcoming": upcoming,
                "stripe_problem": stripe_problem,
                "can_manage": membership.role in (Role.OWNER, Role.ADMIN),
                "error": request.query_params.get("error"),
            },
        )

    @post("/plan", name="billing-change-plan", sync_to_thread=True, status_code=303)
    def change_plan(
        self,
        request: Request[Any, Any, Any],
        state: State,
        db_session: DbSession,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        organization, membership, tenant, account = _context(request, db_session)
        _require_admin(membership)
        settings = plane(state).settings
        if not settings.billing_enabled:
            raise BillingNotConfigured
        wanted = PLANS.get(data.get("plan", ""))
        if account is None or account.subscription_id is None:
            # No subscription yet (a free portal): the first payment goes through Checkout.
            if wanted is None or not wanted.paid:
                raise ValidationFailed({"plan": "Choose the Team or Enterprise plan."})
            account = service.open_upgrade(db_session, organization, tenant, wanted)
            user = db_session.get(User, session_user_id(request))
            try:
                checkout = service.start_checkout(
                    db_session,
                    settings,
                    _gateway(state),
                    account,
                    organization=organization,
                    email=user.email if user else "",
                    return_path="/console/billing",
                )
            except stripe.StripeError as exc:
                raise _stripe_call_failed(exc) from exc
            return Redirect(path=checkout.url, status_code=303)
        try:
            service.change_plan(
                db_session,
                plane(state).settings,
                _gateway(state),
                account,
                data.get("plan", ""),
                actor=f"user:{session_user_id(request)}",
            )
        except stripe.StripeError as exc:
            raise _stripe_call_failed(exc) from exc
        relay_after_commit(request)
        return Redirect(path="/console/billing", status_code=303)

    @post("/portal", name="billing-portal", sync_to_thread=True, status_code=303)
    def portal(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Redirect:
        """Manage billing: Stripe's customer portal for cards, invoices and cancellation."""
        _, membership, _, account = _context(request, db_session)
        _require_admin(membership)
        if account is None or account.customer_id is None:
            raise BillingNotConfigured
        settings = plane(state).settings
        try:
            url = _gateway(state).create_portal_session(
                customer_id=account.customer_id,
                return_url=f"{settings.resolved_public_url}/console/billing",
            )
        except stripe.StripeError as exc:
            raise _stripe_call_failed(exc) from exc
        return Redirect(path=url, status_code=303)

    @get("/checkout", name="billing-checkout", sync_to_thread=True)
    def checkout(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Redirect:
        """Back to Stripe Checkout for a signup still waiting for its payment."""
        organization, membership, tenant, account = _context(request, db_session)
        _require_admin(membership)
        if account is None:
            raise BillingNotConfigured
        if not tenants.awaiting_payment(db_session, tenant):
            return Redirect(path="/console/progress", status_code=303)
        settings = plane(state).settings
        user_id = session_user_id(request)
        owner = db_session.get(User, user_id)
        try:
            session = service.start_checkout(
                db_session,
                settings,
                _gateway(state),
                account,
                organization=organization,
                email=owner.email if owner else "",
            )
        except stripe.StripeError as exc:
            raise _stripe_call_failed(exc) from exc
        return Redirect(path=session.url, status_code=303)
