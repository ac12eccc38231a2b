"""Single sign-on in a real Chromium: the portal served over HTTP, Dex's and the IdP's pages."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from litestar import Litestar
from playwright.sync_api import Browser, Page

from tests.support.dex import PASSWORD, DexServer
from tests.support.saml_idp import SamlIdp, SamlUser
from tests.tenant_runtime.auth.conftest import ALICE, oidc_section, saml_section

pytestmark = [pytest.mark.sso, pytest.mark.browser]


@pytest.fixture
def served_portal(app: Litestar, portal_port: int) -> Iterator[str]:
    """The portal on its public address, as a browser reaches it."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=portal_port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the portal did not start serving", pytrace=False)
        time.sleep(0.05)
    yield f"http://127.0.0.1:{portal_port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _whoami(page: Page, portal_url: str) -> dict[str, str]:
    page.goto(f"{portal_url}/auth/me")
    return dict(json.loads(page.inner_text("body")))


def test_oidc_login_in_a_browser(
    page: Page, served_portal: str, dex: DexServer, app: Litestar
) -> None:
    app.state.sso_state.set_sso(oidc_section(dex))
    page.goto(f"{served_portal}/auth/login")
    page.click("#sso-login")
    page.click("text=Log in with Email")
    page.fill("input[name=login]", ALICE.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{served_portal}/")
    assert _whoami(page, served_portal)["email"] == ALICE.email


def test_saml_login_in_a_browser(
    page: Page, served_portal: str, saml_idp: SamlIdp, app: Litestar
) -> None:
    app.state.sso_state.set_sso(saml_section(saml_idp))
    saml_idp.trust(httpx.get(f"{served_portal}/auth/saml/metadata").text)
    saml_idp.login_as(SamlUser(email="grace@example.com", name="Grace", groups=("developers",)))
    page.goto(f"{served_portal}/auth/login")
    page.click("#sso-login")  # the IdP's page posts the response back by itself
    page.wait_for_url(f"{served_portal}/")
    assert _whoami(page, served_portal)["role"] == "member"
