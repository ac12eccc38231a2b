"""A tenant admin installs a plugin from the console in a real browser and uses it in the
portal, against the whole running product (``make run``'s embedded default)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.product import Product, sign_in_to_the_portal, wait_for_portal_status

pytestmark = [pytest.mark.marketplace, pytest.mark.e2e, pytest.mark.embedded, pytest.mark.browser]

PROVISIONING_TIMEOUT_SECONDS = 120.0
LIVE_TIMEOUT_SECONDS = 30.0


def _sign_up(page: Page, product: Product, name: str) -> None:
    """A new organization through the signup page, its owner signed in."""
    page.goto("/signup")
    page.fill("#organization_name", name)
    expect(page.locator("#slug-status")).to_have_text("Available.")
    page.fill("#email", f"admin@{name.lower().replace(' ', '-')}.example.com")
    page.fill("#password", "orchid-lantern-velvet-9")
    page.click("#signup-submit")
    page.wait_for_url(f"{product.base_url}/console/progress")


def _portal_url(page: Page) -> str:
    """The portal's address, once the progress page shows it up."""
    link = page.locator("#portal-link")
    link.wait_for(state="visible", timeout=PROVISIONING_TIMEOUT_SECONDS * 1000)
    portal_url = link.get_attribute("href")
    assert portal_url is not None
    return portal_url.rstrip("/")


def test_a_tenant_admin_installs_a_free_plugin_and_uses_it(
    page: Page, product: Product, tmp_path: Path
) -> None:
    _sign_up(page, product, "Plugin Installers")
    portal = _portal_url(page)
    runs_page = f"{portal}/plugins/cicd/entity/component/default/orders-service"

    page.goto("/console/plugins/")
    card = page.locator("#plugin-cicd")
    expect(card.locator("h2")).to_contain_text("CI/CD status")
    card.locator("button[name=install]").click()
    expect(page.locator("#notice")).to_have_text(
        "CI/CD status 1.0.0 installed; it goes live in seconds."
    )
    expect(page.locator("#plugin-cicd h2")).to_contain_text("installed 1.0.0")
    page.screenshot(path=tmp_path / "console-plugins.png", full_page=True)

    sign_in_to_the_portal(page, portal)
    wait_for_portal_status(page, runs_page, 200, LIVE_TIMEOUT_SECONDS)
    page.goto(runs_page)
    expect(page.locator("h1")).to_have_text("CI/CD")
    expect(page.locator("header p")).to_have_text("component:default/orders-service")
    page.goto(f"{portal}/plugins/")
    expect(page.get_by_role("link", name="CI/CD status")).to_be_visible()
    page.screenshot(path=tmp_path / "portal-plugins.png", full_page=True)


def test_a_premium_plugin_cannot_be_bought_before_billing_is_connected(
    page: Page, product: Product
) -> None:
    _sign_up(page, product, "Plugin Buyers")
    page.goto("/console/plugins/?q=score")
    page.locator("#plugin-scorecards button[name=buy]").click()
    expect(page.locator("#error")).to_have_text("premium purchases are not available yet")
    expect(page.locator("#plugin-scorecards .access")).to_have_text("not bought")
    # Let provisioning finish, so that the product stops with no work in flight.
    page.goto("/console/progress")
    _portal_url(page)
