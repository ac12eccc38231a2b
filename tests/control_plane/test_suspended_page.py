"""The page a suspended portal's users see: who to turn to, and nothing about money."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.identity.models import Organization
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from control_plane.tenants.suspended import slug_from_host
from tests.control_plane.factories import make_tenant

pytestmark = [pytest.mark.stripe, pytest.mark.integration]


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[TestClient[Any]]:
    configured = settings.model_copy(update={"base_domain": "portals.example"})
    with TestClient(app=create_app(configured, sessions=sessions)) as test_client:
        yield test_client


def _suspended(db_session: Session, *holders: str) -> tuple[Organization, Tenant]:
    _, organization, tenant = make_tenant(db_session)
    tenant.state = TenantState.ACTIVE
    for holder in holders:
        tenants.suspend(db_session, tenant, holder=holder, actor="test", reason="card declined")
    db_session.commit()
    return organization, tenant


def test_a_billing_suspension_sends_users_to_their_admin(
    client: TestClient[Any], db_session: Session
) -> None:
    _, tenant = _suspended(db_session, "billing")
    page = client.get(f"/suspended/{tenant.slug}")
    assert (page.status_code, "contact your organization's admin" in page.text) == (503, True)


def test_an_operator_suspension_sends_users_to_support(
    client: TestClient[Any], db_session: Session
) -> None:
    _, tenant = _suspended(db_session, "operator")
    page = client.get(f"/suspended/{tenant.slug}")
    assert (page.status_code, "contact support" in page.text) == (503, True)


def test_an_operator_hold_outranks_a_billing_hold(
    client: TestClient[Any], db_session: Session
) -> None:
    _, tenant = _suspended(db_session, "billing", "operator")
    assert 'data-cause="operator"' in client.get(f"/suspended/{tenant.slug}").text


def test_the_page_names_the_organization(client: TestClient[Any], db_session: Session) -> None:
    organization, tenant = _suspended(db_session, "billing")
    assert (
        f"{organization.name}'s portal is suspended" in client.get(f"/suspended/{tenant.slug}").text
    )


def test_the_page_leaks_no_billing_details(client: TestClient[Any], db_session: Session) -> None:
    _, tenant = _suspended(db_session, "billing")
    words = set(
        re.findall(
            r"[a-z]+", re.sub(r"<[^>]*>", " ", client.get(f"/suspended/{tenant.slug}").text.lower())
        )
    )
    leaked = sorted(words & {"payment", "invoice", "card", "declined", "stripe", "plan", "billing"})
    assert leaked == []


def test_the_page_is_never_cached(client: TestClient[Any], db_session: Session) -> None:
    _, tenant = _suspended(db_session, "billing")
    assert client.get(f"/suspended/{tenant.slug}").headers["cache-control"] == "no-store"


def test_the_page_is_found_by_the_portals_host(
    client: TestClient[Any], db_session: Session
) -> None:
    _, tenant = _suspended(db_session, "operator")
    page = client.get("/suspended", headers={"Host": f"{tenant.slug}.portals.example"})
    assert (page.status_code, 'data-cause="operator"' in page.text) == (503, True)


def test_a_portal_whose_holds_were_lifted_says_it_is_coming_back(
    client: TestClient[Any], db_session: Session
) -> None:
    _, tenant = _suspended(db_session, "billing")
    tenants.resume(db_session, tenant, holder="billing", actor="test")
    db_session.commit()
    assert 'data-cause="resuming"' in client.get(f"/suspended/{tenant.slug}").text


def test_an_unknown_portal_is_not_found(client: TestClient[Any]) -> None:
    assert client.get("/suspended/no-such-portal").status_code == 404


def test_a_deleted_portal_is_not_found(client: TestClient[Any], db_session: Session) -> None:
    _, tenant = _suspended(db_session)
    tenants.request_deletion(db_session, tenant, actor="test")
    db_session.commit()
    assert client.get(f"/suspended/{tenant.slug}").status_code == 404


@pytest.mark.parametrize(
    ("host", "slug"),
    [
        ("acme.portals.example", "acme"),
        ("ACME.portals.example:443", "acme"),
        ("portals.example", None),
        ("a.b.portals.example", None),
        ("acme.elsewhere.example", None),
    ],
)
def test_the_slug_comes_only_from_a_portal_host(host: str, slug: str | None) -> None:
    assert slug_from_host(host, "portals.example") == slug
