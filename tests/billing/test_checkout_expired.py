"""An abandoned Checkout: the signup waits, says the payment was not completed, and can retry.

The signup goes through the real web app with its Checkout call answered by stripe-mock; the
``checkout.session.expired`` event is signed by the stripe library and posted to the endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from billing import inbox
from billing.gateway import StripeGateway
from billing.models import BillingAccount
from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.outbox.models import OutboxMessage
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from control_plane.tenants.service import RECONCILE_TASK
from tests.billing.conftest import PaidSignup, deliver, event, post_event
from tests.billing.test_signup import signup

pytestmark = [pytest.mark.stripe, pytest.mark.integration]


@pytest.fixture
def mock_client(
    mock_settings: Settings, sessions: sessionmaker[Session]
) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(mock_settings, sessions=sessions)) as client:
        yield client


def _expired(account: BillingAccount, session_id: str | None = None) -> dict[str, Any]:
    return event(
        "checkout.session.expired",
        {
            "id": session_id or account.checkout_session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "client_reference_id": str(account.organization_id),
            "customer": account.customer_id,
            "subscription": None,
            "payment_status": "unpaid",
            "status": "expired",
        },
    )


def _expire(
    client: TestClient[Any],
    db_session: Session,
    settings: Settings,
    account: BillingAccount,
    session_id: str | None = None,
) -> str:
    body = _expired(account, session_id)
    assert post_event(client, body).status_code == 200
    outcome = inbox.handle(db_session, settings, StripeGateway(settings), body["id"])
    db_session.commit()
    return outcome


@pytest.fixture
def abandoned(
    mock_client: TestClient[Any], db_session: Session, mock_settings: Settings
) -> BillingAccount:
    """A paid signup whose Checkout page expired without a payment."""
    assert signup(mock_client).status_code == 303
    account = db_session.scalars(select(BillingAccount)).one()
    _expire(mock_client, db_session, mock_settings, account)
    return account


def _tenant(db_session: Session) -> Tenant:
    return db_session.scalars(select(Tenant)).one()


def test_the_expired_event_is_handled(
    mock_client: TestClient[Any], db_session: Session, mock_settings: Settings
) -> None:
    signup(mock_client)
    account = db_session.scalars(select(BillingAccount)).one()
    assert _expire(mock_client, db_session, mock_settings, account) == "handled"


def test_the_progress_page_says_the_payment_was_not_completed(
    mock_client: TestClient[Any], abandoned: BillingAccount
) -> None:
    page = mock_client.get("/console/progress").text
    assert ('id="checkout-expired"' in page, "Try the payment again" in page) == (True, True)


def test_nothing_is_provisioned_after_an_abandoned_checkout(
    db_session: Session, abandoned: BillingAccount
) -> None:
    queued = db_session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.task_name == RECONCILE_TASK)
    )
    tenant = _tenant(db_session)
    assert (queued, tenant.state, tenants.awaiting_payment(db_session, tenant)) == (
        0,
        TenantState.PENDING,
        True,
    )


def test_the_expired_session_is_forgotten(db_session: Session, abandoned: BillingAccount) -> None:
    db_session.refresh(abandoned)
    assert (abandoned.checkout_session_id, abandoned.checkout_url) == (None, None)


def test_retrying_opens_a_new_checkout(
    mock_client: TestClient[Any], abandoned: BillingAccount
) -> None:
    response = mock_client.get("/console/billing/checkout", follow_redirects=False)
    assert (response.status_code, response.headers["location"].startswith("https://")) == (
        303,
        True,
    )


def test_retrying_waits_for_the_payment_again(
    mock_client: TestClient[Any], db_session: Session, abandoned: BillingAccount
) -> None:
    mock_client.get("/console/billing/checkout", follow_redirects=False)
    db_session.expire_all()
    payment = _tenant(db_session).condition("PaymentConfirmed")
    assert payment is not None
    assert payment["reason"] == "AwaitingPayment"


def test_an_older_sessions_expiry_changes_nothing(
    mock_client: TestClient[Any], db_session: Session, mock_settings: Settings
) -> None:
    signup(mock_client)
    account = db_session.scalars(select(BillingAccount)).one()
    _expire(mock_client, db_session, mock_settings, account, session_id="cs_test_an_older_one")
    payment = _tenant(db_session).condition("PaymentConfirmed")
    assert payment is not None
    assert payment["reason"] == "AwaitingPayment"


def test_the_same_expiry_delivered_twice_is_handled_once(
    mock_client: TestClient[Any], db_session: Session, mock_settings: Settings
) -> None:
    signup(mock_client)
    account = db_session.scalars(select(BillingAccount)).one()
    body = _expired(account)
    post_event(mock_client, body)
    second = post_event(mock_client, body)
    assert second.json()["duplicate"] is True


def test_an_expiry_after_the_payment_changes_nothing(
    active: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    active.account.checkout_session_id = "cs_test_paid_already"
    db_session.commit()
    deliver(client, db_session, stripe_settings, gateway, _expired(active.account))
    db_session.refresh(active.tenant)
    payment = active.tenant.condition("PaymentConfirmed")
    assert payment is not None
    assert (payment["status"], active.tenant.suspended) == ("True", False)
