"""A tenant admin sets up single sign-on in the console, in a real browser, against Dex."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.product import Product
from tests.support.dex import PASSWORD as DEX_PASSWORD
from tests.support.dex import DexClient, DexServer, DexUnavailable, DexUser, run_dex

pytestmark = [pytest.mark.e2e, pytest.mark.embedded, pytest.mark.browser, pytest.mark.sso]

PROVISIONING_TIMEOUT_SECONDS = 90.0
PASSWORD = "orchid-lantern-velvet-9"
OWNER = "ada@globex.example"


def _sign_up(page: Page, product: Product) -> str:
    """A new organization, signed in; the URL of its running portal."""
    page.goto("/signup")
    page.fill("#organization_name", "Globex Identity")
    expect(page.locator("#slug")).to_have_value("globex-identity")
    page.fill("#email", OWNER)
    page.fill("#password", PASSWORD)
    page.click("#signup-submit")
    page.wait_for_url(f"{product.base_url}/console/progress")
    link = page.locator("#portal-link")
    expect(link).to_be_visible(timeout=PROVISIONING_TIMEOUT_SECONDS * 1000)
    portal_url = link.get_attribute("href")
    assert portal_url is not None
    return portal_url.rstrip("/")


@pytest.fixture
def dex_stack() -> Iterator[contextlib.ExitStack]:
    """Dex starts once the portal's address (its redirect URI) is known; stopped at the end."""
    with contextlib.ExitStack() as stack:
        yield stack


def _start_dex(
    stack: contextlib.ExitStack, directory: Path, portal_url: str, console: str
) -> DexServer:
    client = DexClient(
        id="globex-portal",
        secret="globex-portal-secret",
        redirect_uris=[f"{portal_url}/auth/oidc/callback", f"{console}/login/sso/callback"],
    )
    try:
        return stack.enter_context(
            run_dex(directory, [client], [DexUser(email=OWNER, username="ada", user_id="u-ada")])
        )
    except DexUnavailable as error:
        pytest.fail(f"Dex is needed (make dex-build): {error}", pytrace=False)


def test_an_admin_goes_from_nothing_to_working_sso(
    page: Page, product: Product, dex_stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    portal_url = _sign_up(page, product)
    dex = _start_dex(dex_stack, tmp_path / "dex", portal_url, product.base_url)

    page.goto("/console/")
    page.click("#sso-link")
    page.wait_for_url(f"{product.base_url}/console/sso")
    expect(page.locator("#sso-status")).to_contain_text("off")
    expect(page.locator("#test-connection")).to_be_disabled()

    # A wrong issuer first: the page says what is wrong, keeps the input, saves nothing.
    wrong = dex.issuer.replace("127.0.0.1", "localhost")
    page.check("#protocol-oidc")
    page.fill("#issuer", wrong)
    page.fill("#client_id", "globex-portal")
    page.fill("#client_secret", "globex-portal-secret")
    page.fill("#scopes", "openid email profile groups")
    page.fill("#role_mapping", "platform-team = admin")
    page.select_option("#default_role", "member")
    page.click("#save-sso")
    expect(page.locator("#issuer-error")).to_contain_text(f"enter exactly '{dex.issuer}'")
    expect(page.locator("#issuer")).to_have_value(wrong)
    expect(page.locator("#sso-draft")).to_have_text("none")

    page.fill("#issuer", dex.issuer)
    page.fill("#client_secret", "globex-portal-secret")
    page.click("#save-sso")
    page.wait_for_url(f"{product.base_url}/console/sso")
    expect(page.locator("#sso-draft")).to_contain_text("version 1 (OIDC)")
    expect(page.locator("#enable-sso")).to_have_count(0)
    expect(page.locator("#redirect-uris")).to_contain_text(f"{portal_url}/auth/oidc/callback")

    # Test connection hands the admin to the portal, which runs a real login with the draft.
    page.click("#test-connection")
    page.wait_for_url(re.compile(re.escape(f"{dex.issuer}/auth")))
    _sign_in_at_dex(page, OWNER)

    # The portal reported the result to the control plane and sent the admin back.
    page.wait_for_url(re.compile(re.escape(f"{product.base_url}/console/sso?test=")))
    expect(page.locator("#test-result")).to_have_attribute("data-state", "passed")
    expect(page.locator("#test-result")).to_contain_text(f"signed in as {OWNER}")
    page.screenshot(path=tmp_path / "sso-tested.png", full_page=True)

    page.click("#enable-sso")
    page.wait_for_url(f"{product.base_url}/console/sso")
    expect(page.locator("#sso-status")).to_contain_text("enabled")
    expect(page.locator("#sso-live")).to_contain_text(f"OIDC · {dex.issuer}")
    expect(page.locator("#sso-events")).to_contain_text("SsoEnabled")

    # The console itself now signs the admin in through the provider.
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{product.base_url}/login")
    page.fill("#identifier", "globex-identity")
    page.click("#sso-login")
    page.wait_for_url(re.compile(re.escape(f"{dex.issuer}/auth")))
    _sign_in_at_dex(page, OWNER)
    page.wait_for_url(f"{product.base_url}/console")
    expect(page.locator("h1")).to_have_text("Globex Identity")
    page.screenshot(path=tmp_path / "sso-enabled.png", full_page=True)
    print(f"\nscreenshots: {tmp_path / 'sso-tested.png'} {tmp_path / 'sso-enabled.png'}")


def _sign_in_at_dex(page: Page, email: str) -> None:
    """Dex's own pages: the connector chooser, then its password form."""
    page.click("a[href*='/auth/local']")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", DEX_PASSWORD)
    page.click("button[type=submit]")
