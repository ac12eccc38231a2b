"""Buying a premium plugin, end to end against localstripe through the real app.

A Team tenant's admin buys Scorecards through the tenant API: an add-on item joins the
tenant's subscription at localstripe and its invoice is paid with the card on file, or, for
a bank debit that settles later, the add-on waits for the signed ``invoice.paid`` webhook
posted to the real endpoint. Cancelling takes the item off at once and keeps the plugin to
the end of the paid period; a Free tenant is told to upgrade.
"""

from __future__ import annotations

import datetime as dt
import importlib
from typing import Any

import pytest
from celery.signals import worker_process_init
from click.testing import CliRunner
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import addons, service
from billing.gateway import StripeGateway
from control_plane.audit.models import AuditEntry
from control_plane.cli import main
from control_plane.core.settings import Settings
from control_plane.marketplace import purchases
from control_plane.marketplace import service as marketplace
from control_plane.marketplace.entitlements import entitlement_content
from control_plane.marketplace.errors import NotEntitled
from control_plane.marketplace.models import AddOn, AddOnState
from control_plane.marketplace.seed import seed
from control_plane.signup import service as signup
from tests.billing.conftest import (
    PaidSignup,
    attach_card,
    deliver,
    event,
    sign_in,
    stripe_secret,
)
from tests.control_plane.factories import signup_form

pytestmark = [pytest.mark.marketplace, pytest.mark.stripe, pytest.mark.integration]

SCORECARDS = "scorecards"
PRICE = "addon_scorecards_monthly"
PURCHASE = f"/api/v1/tenant/plugins/{SCORECARDS}/purchase"
DECLINED_CARD = "4000000000000341"  # attaches, then every charge is declined
AUTHENTICATION_CARD = "4000002500003155"  # every charge needs 3-D Secure


@pytest.fixture(scope="session")
def addon_prices_in_localstripe(localstripe_url: str, catalog_in_localstripe: None) -> None:
    gateway = StripeGateway(
        Settings(stripe_api_key=stripe_secret("sk_test_backlot"), stripe_api_base=localstripe_url)
    )
    price = addons.addon_prices([("Scorecards", PRICE)])[0]
    assert price.amount_cents is not None
    gateway.ensure_addon_price(PRICE, name=price.name, amount_cents=price.amount_cents)


@pytest.fixture
def team(
    active: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    addon_prices_in_localstripe: None,
) -> PaidSignup:
    """A Team tenant with a paid subscription, its owner signed in to the console."""
    seed(db_session)
    db_session.commit()
    sign_in(client, active.user)
    return active


def _buy(client: TestClient[Any]) -> Any:
    return client.post(PURCHASE, headers={"x-csrftoken": client.cookies["backlot_csrf"]})


def _addon(db_session: Session, signup_: PaidSignup) -> AddOn | None:
    plugin = marketplace.get_plugin(db_session, SCORECARDS)
    db_session.expire_all()
    return marketplace.addon(db_session, signup_.tenant, plugin)


def _entitled_plugins(db_session: Session, signup_: PaidSignup) -> set[str]:
    return {p["id"] for p in entitlement_content(db_session, signup_.tenant)["plugins"]}


def _subscription_prices(gateway: StripeGateway, signup_: PaidSignup) -> list[str]:
    assert signup_.account.subscription_id is not None
    subscription = gateway.retrieve_subscription(signup_.account.subscription_id)
    return sorted(item["plan"]["id"] for item in subscription["items"]["data"])


def test_a_team_tenant_cannot_install_scorecards_before_buying_it(
    team: PaidSignup, db_session: Session
) -> None:
    scorecards = marketplace.get_plugin(db_session, SCORECARDS)
    with pytest.raises(NotEntitled, match="premium plugin: buy it"):
        marketplace.install(db_session, team.tenant, scorecards, actor="user:t")


def test_buying_adds_the_add_on_item_to_the_tenants_subscription(
    team: PaidSignup, client: TestClient[Any], gateway: StripeGateway
) -> None:
    assert _buy(client).status_code == 201
    assert _subscription_prices(gateway, team) == sorted([PRICE, "backlot_team_seat_monthly_v1"])


def test_a_purchase_paid_with_the_card_on_file_is_active_at_once(
    team: PaidSignup, client: TestClient[Any]
) -> None:
    response = _buy(client)
    assert response.json()["state"] == "active"


def test_a_bought_plugin_is_in_the_runtimes_entitlements_and_installs(
    team: PaidSignup, client: TestClient[Any], db_session: Session
) -> None:
    _buy(client)
    installed = client.post(
        f"/api/v1/tenant/plugins/{SCORECARDS}/install",
        json={},
        headers={"x-csrftoken": client.cookies["backlot_csrf"]},
    )
    assert (installed.status_code, SCORECARDS in _entitled_plugins(db_session, team)) == (
        201,
        True,
    )


def test_a_pending_add_on_goes_live_on_the_signed_invoice_paid_webhook(
    team: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    """The add-on waits when its invoice is not paid by the time Stripe answers (a bank
    debit still settling). localstripe settles every payment at once, so the test puts the
    bought add-on back to ``pending`` and then delivers Stripe's ``invoice.paid`` for its
    real invoice; the handler re-reads that invoice from localstripe."""
    _buy(client)
    addon = _addon(db_session, team)
    assert addon is not None
    addon.state = AddOnState.PENDING
    db_session.commit()
    pending = SCORECARDS in _entitled_plugins(db_session, team)

    assert team.account.subscription_id is not None
    latest = gateway.retrieve_subscription(team.account.subscription_id)["latest_invoice"]
    invoice = gateway.retrieve_invoice(latest)
    deliver(client, db_session, stripe_settings, gateway, event("invoice.paid", invoice))

    addon = _addon(db_session, team)
    assert addon is not None
    assert (pending, addon.state, SCORECARDS in _entitled_plugins(db_session, team)) == (
        False,
        AddOnState.ACTIVE,
        True,
    )


def test_a_declined_card_buys_nothing_and_says_why(
    team: PaidSignup, client: TestClient[Any], db_session: Session, gateway: StripeGateway
) -> None:
    assert team.account.customer_id is not None
    attach_card(gateway, team.account.customer_id, DECLINED_CARD)
    response = _buy(client)
    assert (
        response.status_code,
        response.json()["detail"].startswith("The payment did not go through"),
        _addon(db_session, team),
        _subscription_prices(gateway, team),
    ) == (402, True, None, ["backlot_team_seat_monthly_v1"])


def test_a_card_that_needs_the_customers_action_buys_nothing(
    team: PaidSignup, client: TestClient[Any], db_session: Session, gateway: StripeGateway
) -> None:
    """Nobody is at the card to authenticate a charge the console makes on their behalf."""
    assert team.account.customer_id is not None
    attach_card(gateway, team.account.customer_id, AUTHENTICATION_CARD)
    response = _buy(client)
    assert (
        response.status_code,
        response.json()["detail"],
        _addon(db_session, team),
        _subscription_prices(gateway, team),
    ) == (
        402,
        "The payment did not go through: This payment requires the customer's action. "
        "Update the payment method and buy again.",
        None,
        ["backlot_team_seat_monthly_v1"],
    )


def test_cancelling_removes_the_item_and_keeps_the_plugin_to_the_period_end(
    team: PaidSignup, client: TestClient[Any], db_session: Session, gateway: StripeGateway
) -> None:
    _buy(client)
    response = client.delete(PURCHASE, headers={"x-csrftoken": client.cookies["backlot_csrf"]})
    until = dt.datetime.fromisoformat(response.json()["current_period_end"])
    assert (
        response.json()["state"],
        until > dt.datetime.now(dt.UTC) + dt.timedelta(days=27),
        SCORECARDS in _entitled_plugins(db_session, team),
        _subscription_prices(gateway, team),
    ) == ("canceling", True, True, ["backlot_team_seat_monthly_v1"])


def test_a_cancelled_plugin_stops_after_the_period_end(
    team: PaidSignup, client: TestClient[Any], db_session: Session
) -> None:
    _buy(client)
    client.delete(PURCHASE, headers={"x-csrftoken": client.cookies["backlot_csrf"]})
    addon = _addon(db_session, team)
    assert addon is not None
    addon.current_period_end = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db_session.flush()
    assert SCORECARDS not in _entitled_plugins(db_session, team)


def test_cancelling_an_unpaid_add_on_ends_it_at_once(
    team: PaidSignup, client: TestClient[Any], db_session: Session
) -> None:
    _buy(client)
    addon = _addon(db_session, team)
    assert addon is not None
    addon.state = AddOnState.PENDING
    db_session.commit()
    response = client.delete(PURCHASE, headers={"x-csrftoken": client.cookies["backlot_csrf"]})
    assert (response.json()["state"], SCORECARDS in _entitled_plugins(db_session, team)) == (
        "canceled",
        False,
    )


def test_the_purchase_and_its_payment_are_in_the_audit_log(
    team: PaidSignup, client: TestClient[Any], db_session: Session
) -> None:
    _buy(client)
    client.delete(PURCHASE, headers={"x-csrftoken": client.cookies["backlot_csrf"]})
    actions = db_session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.tenant_id == team.tenant.id, AuditEntry.action.like("plugin.%"))
        .order_by(AuditEntry.created_at)
    ).all()
    assert list(actions) == ["plugin.purchased", "plugin.purchase_cancelled"]


def test_a_free_tenant_is_told_to_upgrade_to_buy_a_plugin(
    client: TestClient[Any], db_session: Session, addon_prices_in_localstripe: None
) -> None:
    user, _ = signup.register(
        db_session, signup_form(plan="free"), runtime_release="0.1.0", billing_enabled=True
    )
    seed(db_session)
    db_session.commit()
    sign_in(client, user)
    response = _buy(client)
    assert (response.status_code, response.json()["detail"]) == (
        409,
        "Upgrade to a paid plan to buy plugins: the Free plan has no subscription to add them to.",
    )


def test_the_seat_item_is_mirrored_whatever_the_order_of_the_items(
    team: PaidSignup,
    client: TestClient[Any],
    db_session: Session,
    stripe_settings: Settings,
    gateway: StripeGateway,
) -> None:
    """Stripe does not promise an order for items; the add-on must never pass for the seats."""
    seat_item = team.account.subscription_item_id
    _buy(client)
    assert team.account.subscription_id is not None
    subscription = gateway.retrieve_subscription(team.account.subscription_id)
    subscription["items"]["data"].reverse()
    service.apply_subscription(db_session, stripe_settings, team.account, subscription)
    assert (team.account.subscription_item_id, team.account.quantity) == (seat_item, 5)


def test_an_app_with_stripe_settings_sells_plugins_through_stripe(
    stripe_settings: Settings, settings: Settings
) -> None:
    addons.install(stripe_settings)
    with_stripe = type(purchases.GATEWAY)
    addons.install(settings)
    assert (with_stripe, type(purchases.GATEWAY)) == (
        addons.StripePurchaseGateway,
        purchases.UnavailablePurchaseGateway,
    )


def test_the_worker_sells_plugins_through_stripe_once_its_processes_start(
    stripe_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``billing.tasks`` is among the modules the worker imports (``build_celery``)."""
    importlib.import_module("billing.tasks")
    monkeypatch.setattr(purchases, "GATEWAY", purchases.UnavailablePurchaseGateway())
    monkeypatch.setenv("BACKLOT_STRIPE_API_KEY", "sk_test_backlot")
    monkeypatch.setenv("BACKLOT_STRIPE_API_BASE", stripe_settings.stripe_api_base)
    monkeypatch.setenv("BACKLOT_DATA_DIR", str(stripe_settings.data_dir))
    worker_process_init.send(sender=None)
    assert isinstance(purchases.GATEWAY, addons.StripePurchaseGateway)


def test_the_sync_command_creates_the_add_on_price_once(
    stripe_settings: Settings, gateway: StripeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKLOT_STRIPE_API_KEY", "sk_test_backlot")
    monkeypatch.setenv("BACKLOT_STRIPE_API_BASE", stripe_settings.stripe_api_base)
    monkeypatch.setenv("BACKLOT_DATA_DIR", str(stripe_settings.data_dir))
    runs = [CliRunner().invoke(main, ["billing", "sync"]) for _ in range(2)]
    price = gateway.client.v1.plans.retrieve(PRICE)
    assert (
        [r.exit_code for r in runs],
        f"add-on {PRICE} (unchanged)" in runs[1].output.splitlines(),
        price.amount,
        price.interval,
    ) == ([0, 0], True, 900, "month")
