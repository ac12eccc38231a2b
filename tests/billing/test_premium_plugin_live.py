"""A bought premium plugin goes live in a running runtime, through the real control plane.

The Team tenant's subscription lives in localstripe; the purchase adds the add-on item and
is paid with the card on file, the control plane hands the runtime a new entitlement token,
and the runtime starts answering on Scorecards' routes without a restart.
"""
# ruff: noqa: F811 - the add-on price fixture is imported and then requested by name

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from billing import service
from billing.gateway import StripeGateway
from control_plane.core import migrations
from control_plane.core.database import build_engine, build_session_factory
from control_plane.core.settings import Settings
from control_plane.identity.models import Organization
from control_plane.marketplace import purchases
from control_plane.marketplace import service as marketplace
from control_plane.marketplace.seed import seed
from control_plane.signup import service as signup
from control_plane.tenants.models import Tenant
from infra.testenv import services
from tests.billing.conftest import pay_at_checkout
from tests.billing.test_premium_plugins import (  # noqa: F401 - a fixture, requested by name
    SCORECARDS,
    addon_prices_in_localstripe,
)
from tests.control_plane.factories import signup_form
from tests.control_plane.marketplace.live import (
    RuntimeProcess,
    run_runtime,
    serve_control_plane,
    wait_for,
)

pytestmark = [pytest.mark.marketplace, pytest.mark.stripe, pytest.mark.integration]

LIVE_TIMEOUT = 15
SCORECARDS_API = "/api/plugins/scorecards/teams"


@contextmanager
def own_database(postgres_admin_url: str, name: str) -> Iterator[str]:
    """A migrated database of its own, dropped afterwards: what these tests commit (a paid
    signup, its outbox rows) never reaches the shared test database's other tests."""
    url = services.create_database(postgres_admin_url, name)
    try:
        migrations.upgrade(url)
        yield url
    finally:
        services.drop_database(postgres_admin_url, name)


@pytest.fixture(scope="module")
def live_database_url(postgres_admin_url: str) -> Iterator[str]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with own_database(postgres_admin_url, f"backlot_test_{worker}_premium_live") as url:
        yield url


@pytest.fixture
def committed(live_database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions that really commit: the served control plane reads what the test writes."""
    engine = build_engine(live_database_url)
    yield build_session_factory(engine)
    engine.dispose()


def paid_team_tenant(session: Session, settings: Settings, gateway: StripeGateway) -> Tenant:
    """A Team tenant whose subscription at Stripe is paid, as after Checkout; committed."""
    seed(session)
    user, tenant = signup.register(
        session, signup_form(plan="team"), runtime_release="0.1.0", billing_enabled=True
    )
    account = service.account_of_tenant(session, tenant.id)
    organization = session.get(Organization, tenant.organization_id)
    assert account is not None
    assert organization is not None
    account.customer_id = gateway.create_customer(
        organization_id=str(organization.id), name=organization.name, email=user.email
    )
    subscription = pay_at_checkout(
        gateway,
        customer_id=account.customer_id,
        organization_id=str(organization.id),
        plan_key="team",
        quantity=5,
    )
    service.apply_subscription(session, settings, account, subscription)
    session.commit()
    return tenant


@pytest.fixture
def team_tenant(
    committed: sessionmaker[Session],
    stripe_settings: Settings,
    gateway: StripeGateway,
    addon_prices_in_localstripe: None,
) -> Tenant:
    with committed() as session:
        return paid_team_tenant(session, stripe_settings, gateway)


@pytest.fixture
def served(
    stripe_settings: Settings, committed: sessionmaker[Session], live_database_url: str
) -> Iterator[tuple[str, Settings]]:
    settings = stripe_settings.model_copy(update={"database_url": live_database_url})
    with serve_control_plane(settings, committed) as served:
        yield served


@pytest.fixture
def runtime(
    tmp_path: Path, team_tenant: Tenant, served: tuple[str, Settings]
) -> Iterator[RuntimeProcess]:
    url, settings = served
    with run_runtime(tmp_path / "runtime", team_tenant, settings, url) as process:
        yield process


def buy_and_install(committed: sessionmaker[Session], tenant_id: object) -> str:
    with committed() as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        plugin = marketplace.get_plugin(session, SCORECARDS)
        # The gateway the served app installed from its Stripe settings.
        bought = purchases.buy(session, tenant, plugin, actor="user:test")
        marketplace.install(session, tenant, plugin, actor="user:test")
        session.commit()
        return str(bought.state)


def test_a_bought_premium_plugin_answers_in_the_runtime_without_a_restart(
    runtime: RuntimeProcess, committed: sessionmaker[Session], team_tenant: Tenant
) -> None:
    pid = runtime.process.pid
    before = runtime.get(SCORECARDS_API).status_code

    started = time.monotonic()
    state = buy_and_install(committed, team_tenant.id)
    wait_for(
        lambda: runtime.get(SCORECARDS_API).status_code == 200,
        LIVE_TIMEOUT,
        runtime,
        "Scorecards answering after the purchase",
    )
    print(f"\nbuy+install to Scorecards answering: {time.monotonic() - started:.2f} s")
    assert (before, state, runtime.process.pid, runtime.process.poll()) == (
        404,
        "active",
        pid,
        None,
    )
