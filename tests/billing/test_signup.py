"""Paid signups through the real web app: Checkout first, provisioning only after payment.

The Checkout call goes to stripe-mock, which checks its shape and answers with a hosted page.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from billing.models import BillingAccount
from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.identity.models import Organization
from control_plane.outbox.models import OutboxMessage
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from control_plane.tenants.service import RECONCILE_TASK
from tests.control_plane.factories import PASSWORD

pytestmark = [pytest.mark.stripe, pytest.mark.integration]


def _client(settings: Settings, sessions: sessionmaker[Session]) -> TestClient[Any]:
    return TestClient(app=create_app(settings, sessions=sessions))


@pytest.fixture
def mock_client(
    mock_settings: Settings, sessions: sessionmaker[Session]
) -> Iterator[TestClient[Any]]:
    with _client(mock_settings, sessions) as client:
        yield client


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden input {name}"
    return match.group(1)


def signup(client: TestClient[Any], plan: str = "team") -> httpx.Response:
    page = client.get("/signup").text
    slug = f"paid-{uuid.uuid4().hex[:8]}"
    return client.post(
        "/signup",
        data={
            "_csrf_token": _hidden(page, "_csrf_token"),
            "signup_token": _hidden(page, "signup_token"),
            "organization_name": "Paying Customer",
            "slug": slug,
            "email": f"owner@{slug}.example.com",
            "password": PASSWORD,
            "plan": plan,
        },
        follow_redirects=False,
    )


def _count(db_session: Session, model: Any) -> int:
    return int(db_session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_paid_signup_is_sent_to_stripe_checkout(mock_client: TestClient[Any]) -> None:
    response = signup(mock_client)
    assert (response.status_code, response.headers["location"].startswith("https://")) == (
        303,
        True,
    )


def test_a_paid_signup_records_its_checkout(
    mock_client: TestClient[Any], db_session: Session
) -> None:
    signup(mock_client)
    account = db_session.scalars(select(BillingAccount)).one()
    assert (
        account.plan,
        account.customer_id is not None,
        account.checkout_session_id is not None,
    ) == (
        "team",
        True,
        True,
    )


def test_a_paid_signup_queues_no_provisioning_before_payment(
    mock_client: TestClient[Any], db_session: Session
) -> None:
    signup(mock_client)
    queued = db_session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.task_name == RECONCILE_TASK)
    )
    tenant = db_session.scalars(select(Tenant)).one()
    assert (queued, tenant.state) == (0, TenantState.PENDING)


def test_the_progress_page_says_it_waits_for_the_payment(mock_client: TestClient[Any]) -> None:
    signup(mock_client)
    page = mock_client.get("/console/progress").text
    assert 'data-step="payment"' in page
    assert "Waiting for your payment" in page


def test_the_signup_page_offers_paid_plans_when_billing_is_configured(
    mock_client: TestClient[Any],
) -> None:
    assert "billing is not configured" not in mock_client.get("/signup").text


def test_without_stripe_a_paid_plan_says_billing_is_not_configured(
    settings: Settings, sessions: sessionmaker[Session], db_session: Session
) -> None:
    with _client(settings, sessions) as client:
        response = signup(client)
    assert (response.status_code, "Billing is not configured" in response.text) == (422, True)


def test_without_stripe_a_free_signup_still_works(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    with _client(settings, sessions) as client:
        response = signup(client, plan="free")
    assert (response.status_code, response.headers["location"]) == (303, "/console/progress")


def test_when_stripe_cannot_be_reached_nothing_is_created(
    mock_settings: Settings, sessions: sessionmaker[Session], db_session: Session
) -> None:
    from infra.stripe.servers import free_port  # noqa: PLC0415

    unreachable = mock_settings.model_copy(
        update={"stripe_api_base": f"http://127.0.0.1:{free_port()}"}
    )
    with _client(unreachable, sessions) as client:
        response = signup(client)
    assert (response.status_code, _count(db_session, Organization)) == (503, 0)


def test_returning_from_a_canceled_checkout_says_nothing_was_charged(
    mock_client: TestClient[Any],
) -> None:
    signup(mock_client)
    page = mock_client.get("/console/progress", params={"checkout": "canceled"}).text
    assert 'id="checkout-canceled"' in page


def test_continue_to_payment_opens_a_new_checkout(mock_client: TestClient[Any]) -> None:
    signup(mock_client)
    response = mock_client.get("/console/billing/checkout", follow_redirects=False)
    assert (response.status_code, response.headers["location"].startswith("https://")) == (
        303,
        True,
    )
