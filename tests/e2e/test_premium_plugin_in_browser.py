"""A tenant admin on the Team plan buys the premium Scorecards plugin in the console and uses
it in the portal, in a real browser, against the whole running product billed at localstripe.

localstripe has no Checkout, so the step where the admin pays for the Team plan is done as
Checkout does it (the admin's free portal opens its upgrade, Stripe gets a customer, a card
and the subscription) and Stripe's signed ``checkout.session.completed`` is posted to the
product's webhook endpoint. Everything after that runs through the browser and the product.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from billing import service as billing
from billing.addons import ADDON_PRICE_CENTS
from billing.catalog import PLANS
from billing.gateway import StripeGateway
from control_plane.core.database import build_engine, build_session_factory
from control_plane.core.settings import Settings
from control_plane.identity.models import User
from control_plane.identity.service import organization_of
from control_plane.models import import_all
from control_plane.tenants import service as tenants
from infra.stripe import servers
from tests.billing.conftest import (
    WEBHOOK_SECRET,
    checkout_completed,
    pay_at_checkout,
    sign,
    stripe_secret,
)
from tests.e2e.product import (
    Product,
    running_product,
    sign_in_to_the_portal,
    wait_for_portal_status,
)

pytestmark = [
    pytest.mark.marketplace,
    pytest.mark.stripe,
    pytest.mark.e2e,
    pytest.mark.embedded,
    pytest.mark.browser,
]

PROVISIONING_TIMEOUT_SECONDS = 120.0
LIVE_TIMEOUT_SECONDS = 60.0
STRIPE_KEY = "sk_test_backlot"
ADDON = "addon_scorecards_monthly"
ADMIN = "admin@scorecard-buyers.example.com"


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, StripeGateway]]:
    """localstripe's address, with the plan catalog and the Scorecards add-on price in it."""
    try:
        server = servers.start_localstripe(tmp_path_factory.mktemp("localstripe"))
    except servers.StripeServerUnavailable as exc:
        pytest.fail(f"localstripe is needed (uv sync installs it): {exc}", pytrace=False)
    gateway = StripeGateway(
        Settings(
            stripe_api_key=stripe_secret(STRIPE_KEY),
            stripe_api_base=server.url,
            stripe_max_network_retries=0,
            data_dir=tmp_path_factory.mktemp("catalog"),
        )
    )
    for plan in PLANS.values():
        if plan.paid:
            gateway.ensure_product(plan)
            gateway.ensure_price(plan)
    gateway.ensure_addon_price(
        ADDON, name="Backlot Scorecards", amount_cents=ADDON_PRICE_CENTS[ADDON]
    )
    yield server.url, gateway
    server.stop()


@pytest.fixture(scope="module")
def billed_product(
    tmp_path_factory: pytest.TempPathFactory, localstripe: tuple[str, StripeGateway]
) -> Iterator[Product]:
    """The whole product on the embedded default, with billing at localstripe."""
    with running_product(
        tmp_path_factory.mktemp("backlot-billed") / "data",
        BACKLOT_STRIPE_API_KEY=STRIPE_KEY,
        BACKLOT_STRIPE_API_BASE=localstripe[0],
        BACKLOT_STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET,
        BACKLOT_STRIPE_MAX_NETWORK_RETRIES="0",
    ) as running:
        yield running


@pytest.fixture
def page(browser: Browser, billed_product: Product) -> Iterator[Page]:
    context: BrowserContext = browser.new_context(
        base_url=billed_product.base_url, viewport={"width": 1100, "height": 900}
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _sign_up(page: Page, product: Product) -> str:
    """A Free organization through the signup page; returns its portal's address."""
    page.goto("/signup")
    page.fill("#organization_name", "Scorecard Buyers")
    expect(page.locator("#slug-status")).to_have_text("Available.")
    page.fill("#email", ADMIN)
    page.fill("#password", "orchid-lantern-velvet-9")
    page.click("#signup-submit")
    page.wait_for_url(f"{product.base_url}/console/progress")
    link = page.locator("#portal-link")
    link.wait_for(state="visible", timeout=PROVISIONING_TIMEOUT_SECONDS * 1000)
    portal_url = link.get_attribute("href")
    assert portal_url is not None
    return portal_url.rstrip("/")


def _pay_for_the_team_plan(product: Product, gateway: StripeGateway) -> None:
    """What the Team upgrade's Checkout does, then Stripe's signed event to the product."""
    import_all()
    engine = build_engine(f"sqlite:///{product.database_path}")
    try:
        with build_session_factory(engine)() as session:
            user = session.scalar(select(User).where(User.email == ADMIN))
            assert user is not None
            found = organization_of(session, user.id)
            assert found is not None
            organization = found[0]
            tenant = tenants.tenant_of_organization(session, organization.id)
            account = billing.open_upgrade(session, organization, tenant, PLANS["team"])
            account.customer_id = gateway.create_customer(
                organization_id=str(organization.id), name=organization.name, email=ADMIN
            )
            customer_id, organization_id = account.customer_id, str(organization.id)
            session.commit()
    finally:
        engine.dispose()
    subscription = pay_at_checkout(
        gateway,
        customer_id=customer_id,
        organization_id=organization_id,
        plan_key="team",
        quantity=PLANS["team"].included_seats,
    )
    payload = json.dumps(
        checkout_completed(
            organization_id=organization_id,
            customer_id=customer_id,
            subscription_id=subscription["id"],
        )
    )
    response = httpx.post(
        f"{product.base_url}/webhooks/stripe",
        content=payload.encode(),
        headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text


def _wait_for_active_subscription(page: Page) -> None:
    """The billing page shows the subscription active once the worker handled the event."""
    deadline = time.monotonic() + LIVE_TIMEOUT_SECONDS
    status = ""
    while time.monotonic() < deadline:
        page.goto("/console/billing")
        status = page.locator("#billing-status").inner_text()
        if status == "active":
            return
        time.sleep(0.5)
    pytest.fail(f"the subscription is {status!r}, not active, within {LIVE_TIMEOUT_SECONDS}s")


def test_a_team_admin_buys_scorecards_and_uses_it_in_the_portal(
    page: Page, billed_product: Product, localstripe: tuple[str, StripeGateway], tmp_path: Path
) -> None:
    portal = _sign_up(page, billed_product)
    _pay_for_the_team_plan(billed_product, localstripe[1])
    _wait_for_active_subscription(page)
    expect(page.locator("#plan")).to_have_text("Team")

    page.goto("/console/plugins/?q=score")
    card = page.locator("#plugin-scorecards")
    expect(card.locator(".access")).to_have_text("not bought")
    card.locator("button[name=buy]").click()
    expect(page.locator("#notice")).to_have_text("Scorecards bought; install it to use it.")
    page.locator("#plugin-scorecards button[name=install]").click()
    expect(page.locator("#notice")).to_have_text(
        "Scorecards 1.0.0 installed; it goes live in seconds."
    )
    expect(page.locator("#plugin-scorecards .access")).to_have_text("entitled")
    page.screenshot(path=tmp_path / "console-scorecards-bought.png", full_page=True)

    sign_in_to_the_portal(page, portal)
    wait_for_portal_status(page, f"{portal}/plugins/scorecards/", 200, LIVE_TIMEOUT_SECONDS)
    page.goto(f"{portal}/plugins/scorecards/")
    expect(page.locator("h1")).to_have_text("Scorecards")
    expect(page.locator("#teams")).to_be_visible()
    page.screenshot(path=tmp_path / "portal-scorecards.png", full_page=True)
