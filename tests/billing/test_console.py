"""The tenant admin's billing pages and API through the real app."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from billing.gateway import StripeGateway
from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.identity.models import Role
from tests.billing.conftest import PaidSignup, sign_in
from tests.control_plane.factories import make_tenant

pytestmark = [pytest.mark.stripe, pytest.mark.integration]


def _csrf(client: TestClient[Any]) -> str:
    return str(client.cookies.get("backlot_csrf"))


def test_the_billing_page_shows_plan_and_seats(active: PaidSignup, client: TestClient[Any]) -> None:
    sign_in(client, active.user)
    page = client.get("/console/billing").text
    assert ('id="plan">Team<' in page, 'id="seats-billed">5<' in page) == (True, True)


def test_the_billing_page_lists_the_invoices(active: PaidSignup, client: TestClient[Any]) -> None:
    sign_in(client, active.user)
    page = client.get("/console/billing").text
    assert "No invoices yet." not in page


def test_the_billing_page_shows_the_next_invoice(
    active: PaidSignup, client: TestClient[Any]
) -> None:
    sign_in(client, active.user)
    assert 'id="next-invoice"' in client.get("/console/billing").text


def test_the_plan_is_changed_from_the_console(
    active: PaidSignup, client: TestClient[Any], db_session: Session, gateway: StripeGateway
) -> None:
    sign_in(client, active.user)
    client.get("/console/billing")
    response = client.post(
        "/console/billing/plan",
        data={"plan": "enterprise", "_csrf_token": _csrf(client)},
        follow_redirects=False,
    )
    assert active.account.subscription_id is not None
    at_stripe = gateway.retrieve_subscription(active.account.subscription_id)
    assert (response.status_code, at_stripe["items"]["data"][0]["plan"]["id"]) == (
        303,
        "backlot_enterprise_seat_monthly_v1",
    )


def test_an_unknown_plan_is_refused_with_a_message(
    active: PaidSignup, client: TestClient[Any]
) -> None:
    sign_in(client, active.user)
    client.get("/console/billing")
    response = client.post(
        "/console/billing/plan",
        data={"plan": "platinum", "_csrf_token": _csrf(client)},
        follow_redirects=False,
    )
    assert (response.status_code, "Team or Enterprise" in response.text) == (422, True)


def test_manage_billing_opens_stripes_customer_portal(
    mock_settings: Settings, sessions: sessionmaker[Session], db_session: Session
) -> None:
    user, _, tenant = make_tenant(db_session)
    from billing.models import BillingAccount  # noqa: PLC0415

    db_session.add(
        BillingAccount(
            organization_id=tenant.organization_id,
            tenant_id=tenant.id,
            plan="team",
            customer_id="cus_portal",
            status="active",
        )
    )
    db_session.commit()
    with TestClient(app=create_app(mock_settings, sessions=sessions)) as client:
        sign_in(client, user)
        client.get("/console/billing")
        response = client.post(
            "/console/billing/portal",
            data={"_csrf_token": _csrf(client)},
            follow_redirects=False,
        )
    assert (response.status_code, response.headers["location"].startswith("https://")) == (
        303,
        True,
    )


def test_a_member_cannot_change_the_plan(client: TestClient[Any], db_session: Session) -> None:
    user, _, _ = make_tenant(db_session, role=Role.MEMBER)
    db_session.commit()
    sign_in(client, user)
    client.get("/console/billing")
    response = client.post(
        "/console/billing/plan",
        data={"plan": "enterprise", "_csrf_token": _csrf(client)},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_a_free_portal_reports_the_free_plan(client: TestClient[Any], db_session: Session) -> None:
    user, _, _ = make_tenant(db_session)
    db_session.commit()
    sign_in(client, user)
    body = client.get("/api/v1/tenant/billing").json()
    assert (body["plan"]["key"], body["status"], body["seats_included"]) == ("free", "free", 5)


def test_the_api_lists_invoices_from_stripe(active: PaidSignup, client: TestClient[Any]) -> None:
    sign_in(client, active.user)
    invoices = client.get("/api/v1/tenant/billing/invoices").json()
    assert [i["status"] for i in invoices] == ["paid"]


def test_a_free_portal_upgrades_through_stripe_checkout(
    mock_settings: Settings, sessions: sessionmaker[Session], db_session: Session
) -> None:
    user, _, _ = make_tenant(db_session)
    db_session.commit()
    with TestClient(app=create_app(mock_settings, sessions=sessions)) as client:
        sign_in(client, user)
        client.get("/console/billing")
        response = client.post(
            "/console/billing/plan",
            data={"plan": "team", "_csrf_token": _csrf(client)},
            follow_redirects=False,
        )
    assert (response.status_code, response.headers["location"].startswith("https://")) == (
        303,
        True,
    )


def test_a_free_portal_keeps_running_while_it_upgrades(
    mock_settings: Settings, sessions: sessionmaker[Session], db_session: Session
) -> None:
    from control_plane.tenants import service as tenants  # noqa: PLC0415

    user, _, tenant = make_tenant(db_session)
    db_session.commit()
    with TestClient(app=create_app(mock_settings, sessions=sessions)) as client:
        sign_in(client, user)
        client.get("/console/billing")
        client.post(
            "/console/billing/plan",
            data={"plan": "team", "_csrf_token": _csrf(client)},
            follow_redirects=False,
        )
    db_session.expire_all()
    assert (tenants.awaiting_payment(db_session, tenant), tenant.suspended) == (False, False)


def test_without_stripe_the_console_says_billing_is_not_configured(
    client: TestClient[Any],
    settings: Settings,
    sessions: sessionmaker[Session],
    db_session: Session,
) -> None:
    user, _, _ = make_tenant(db_session)
    db_session.commit()
    with TestClient(app=create_app(settings, sessions=sessions)) as plain:
        sign_in(plain, user)
        page = plain.get("/console/billing").text
    assert "Billing is not configured" in page


def test_the_consoles_front_page_links_billing_and_shows_its_notice(
    active: PaidSignup, client: TestClient[Any], db_session: Session
) -> None:
    active.account.notice = "Your last payment failed; please update your card."
    db_session.commit()
    sign_in(client, active.user)
    page = client.get("/console/").text
    assert ('id="billing-link"' in page, "Your last payment failed" in page) == (True, True)
