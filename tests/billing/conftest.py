"""Stripe's stand-ins for the billing tests: stripe-mock for request shapes, localstripe for state.

Each test process starts its own instances on free loopback ports (localstripe with a
private state file), so parallel runs never see each other's customers.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
import stripe
from litestar.testing import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing import inbox, service
from billing.catalog import PLANS
from billing.gateway import StripeGateway
from billing.models import BillingAccount
from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.identity.models import Organization, User
from control_plane.provisioning.models import Operation, OperationState
from control_plane.signup import service as signup
from control_plane.tenants.models import Tenant
from control_plane.tenants.service import AWAIT_PAYMENT
from infra.stripe import servers
from tests.control_plane.factories import PASSWORD, signup_form

WEBHOOK_SECRET = "whsec_test_billing_current"
OLD_WEBHOOK_SECRET = "whsec_test_billing_previous"


@pytest.fixture(scope="session")
def stripe_mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        server = servers.start_stripe_mock(tmp_path_factory.mktemp("stripe-mock"))
    except servers.StripeServerUnavailable as exc:
        pytest.fail(
            f"stripe-mock is needed: {exc} (build it with `bash infra/stripe/build.sh`)",
            pytrace=False,
        )
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        server = servers.start_localstripe(tmp_path_factory.mktemp("localstripe"))
    except servers.StripeServerUnavailable as exc:
        pytest.fail(f"localstripe is needed (uv sync installs it): {exc}", pytrace=False)
    yield server.url
    server.stop()


def _stripe_settings(settings: Settings, api_base: str) -> Settings:
    return settings.model_copy(
        update={
            "stripe_api_key": stripe_secret("sk_test_backlot"),
            "stripe_api_base": api_base,
            "stripe_webhook_secrets": stripe_secret(f"{WEBHOOK_SECRET},{OLD_WEBHOOK_SECRET}"),
            "stripe_max_network_retries": 0,
            "public_url": "http://portal.test",
        }
    )


def stripe_secret(value: str) -> SecretStr:
    return SecretStr(value)


@pytest.fixture
def mock_settings(settings: Settings, stripe_mock_url: str) -> Settings:
    return _stripe_settings(settings, stripe_mock_url)


@pytest.fixture
def stripe_settings(settings: Settings, localstripe_url: str) -> Settings:
    return _stripe_settings(settings, localstripe_url)


@pytest.fixture(scope="session")
def catalog_in_localstripe(localstripe_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    gateway = StripeGateway(
        Settings(
            stripe_api_key=stripe_secret("sk_test_backlot"),
            stripe_api_base=localstripe_url,
            data_dir=tmp_path_factory.mktemp("catalog"),
        )
    )
    for plan in PLANS.values():
        if plan.paid:
            gateway.ensure_product(plan)
            gateway.ensure_price(plan)


@pytest.fixture
def gateway(stripe_settings: Settings, catalog_in_localstripe: None) -> StripeGateway:
    return StripeGateway(stripe_settings)


@pytest.fixture
def client(stripe_settings: Settings, sessions: sessionmaker[Session]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(stripe_settings, sessions=sessions)) as test_client:
        yield test_client


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header made by the stripe library's own signing code."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)


def event(type_: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """An event envelope in Stripe's shape (the data object comes from the emulator)."""
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
        "data": {"object": obj},
    }


def post_event(client: TestClient[Any], body: dict[str, Any], **sign_kwargs: Any) -> Any:
    payload = json.dumps(body)
    return client.post(
        "/webhooks/stripe",
        content=payload.encode(),
        headers={
            "Stripe-Signature": sign(payload, **sign_kwargs),
            "Content-Type": "application/json",
        },
    )


def attach_card(gateway: StripeGateway, customer_id: str, number: str) -> str:
    """Give the customer a default card, as Checkout or the customer portal would."""
    client = gateway.client.v1
    method = client.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"},
        }
    )
    client.payment_methods.attach(method.id, params={"customer": customer_id})
    client.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": method.id}}
    )
    return method.id


def pay_at_checkout(
    gateway: StripeGateway,
    *,
    customer_id: str,
    organization_id: str,
    plan_key: str,
    quantity: int,
    card: str = "4242424242424242",
) -> dict[str, Any]:
    """What Stripe Checkout does once the customer pays: card on file, subscription created.

    localstripe has no Checkout Sessions, so the test performs Checkout's own steps against
    it and then delivers the signed ``checkout.session.completed`` event Stripe would send;
    the request shape of our Checkout call is checked against stripe-mock.
    """
    attach_card(gateway, customer_id, card)
    subscription = gateway.client.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"plan": PLANS[plan_key].price_id, "quantity": quantity}],
            "metadata": {"backlot_organization_id": organization_id, "plan": plan_key},
        }
    )
    return cast(dict[str, Any], subscription.to_dict())


def checkout_completed(
    *, organization_id: str, customer_id: str, subscription_id: str, paid: bool = True
) -> dict[str, Any]:
    return event(
        "checkout.session.completed",
        {
            "id": f"cs_test_{uuid.uuid4().hex[:24]}",
            "object": "checkout.session",
            "mode": "subscription",
            "client_reference_id": organization_id,
            "customer": customer_id,
            "subscription": subscription_id,
            "payment_status": "paid" if paid else "unpaid",
            "status": "complete",
        },
    )


@dataclass
class PaidSignup:
    user: User
    organization: Organization
    tenant: Tenant
    account: BillingAccount


@pytest.fixture
def paid_signup(db_session: Session, gateway: StripeGateway) -> PaidSignup:
    """A Team signup up to the moment Checkout opens (the customer exists at Stripe)."""
    user, tenant = signup.register(
        db_session, signup_form(plan="team"), runtime_release="0.1.0", billing_enabled=True
    )
    organization = db_session.get(Organization, tenant.organization_id)
    account = service.account_of_tenant(db_session, tenant.id)
    assert organization is not None
    assert account is not None
    account.customer_id = gateway.create_customer(
        organization_id=str(organization.id), name=organization.name, email=user.email
    )
    db_session.commit()
    return PaidSignup(user, organization, tenant, account)


def deliver(
    client: TestClient[Any],
    db_session: Session,
    settings: Settings,
    gateway: StripeGateway,
    body: dict[str, Any],
) -> str:
    """Post the signed event to the endpoint, then handle it as the worker would."""
    assert post_event(client, body).status_code == 200
    outcome = inbox.handle(db_session, settings, gateway, body["id"])
    db_session.commit()
    return outcome


def reconcile_operations(db_session: Session, tenant: Tenant) -> list[Operation]:
    return list(
        db_session.scalars(
            select(Operation).where(
                Operation.tenant_id == tenant.id,
                Operation.kind != AWAIT_PAYMENT,
                Operation.state == OperationState.PENDING,
            )
        )
    )


def subscribe(
    signup_: PaidSignup, gateway: StripeGateway, card: str = "4242424242424242"
) -> dict[str, Any]:
    assert signup_.account.customer_id is not None
    return pay_at_checkout(
        gateway,
        customer_id=signup_.account.customer_id,
        organization_id=str(signup_.organization.id),
        plan_key="team",
        quantity=PLANS["team"].included_seats,
        card=card,
    )


@pytest.fixture
def active(
    paid_signup: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> PaidSignup:
    """A paid signup whose checkout completed."""
    subscription = subscribe(paid_signup, gateway)
    assert paid_signup.account.customer_id is not None
    deliver(
        client,
        db_session,
        stripe_settings,
        gateway,
        checkout_completed(
            organization_id=str(paid_signup.organization.id),
            customer_id=paid_signup.account.customer_id,
            subscription_id=subscription["id"],
        ),
    )
    return paid_signup


def sign_in(client: TestClient[Any], user: User) -> None:
    """Log in through the real login form."""
    page = client.get("/login").text
    match = re.search(r'name="_csrf_token" value="([^"]*)"', page)
    assert match is not None
    response = client.post(
        "/login",
        data={"_csrf_token": match.group(1), "email": user.email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 303
