"""A browser's way through an OpenID login: the portal, Dex's pages, back to the portal."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from tests.support.dex import (
    LOCAL_CONNECTOR,
    PASSWORD,
    PROXY_CONNECTOR,
    DexServer,
    connector_link,
    login_form_action,
    proxy_headers,
)


def to_portal(portal_url: str, response: httpx.Response, browser: httpx.Client) -> str:
    """Follow Dex's redirects until one leaves for the portal; that URL's path and query."""
    for _ in range(10):
        location = response.headers.get("location")
        if location is None:
            raise AssertionError(f"Dex stopped at {response.url}: {response.text[:300]}")
        target = str(response.url.join(location))
        if target.startswith(portal_url):
            parts = urlsplit(target)
            return f"{parts.path}?{parts.query}"
        response = browser.get(target)
    raise AssertionError("Dex redirected too often")


def dex_round_trip(
    portal: TestClient[Litestar],
    portal_url: str,
    *,
    email: str,
    groups: Sequence[str] | None = None,
) -> str:
    """Start SSO at the portal and log in at Dex; returns the portal callback to call.

    Without groups the user logs in through Dex's password form; with groups through the
    authenticating-proxy connector, whose headers carry them.
    """
    start = portal.get("/auth/sso/start", follow_redirects=False)
    assert start.status_code == 302, start.text
    headers = {} if groups is None else proxy_headers(email, groups)
    with httpx.Client(headers=headers) as browser:
        chooser = browser.get(start.headers["location"])
        if groups is None:
            link = connector_link(chooser.text, str(chooser.url), LOCAL_CONNECTOR)
            form = browser.get(link, follow_redirects=True)
            response = browser.post(
                login_form_action(form.text, str(form.url)),
                data={"login": email, "password": PASSWORD},
            )
        else:
            response = browser.get(connector_link(chooser.text, str(chooser.url), PROXY_CONNECTOR))
        return to_portal(portal_url, response, browser)


def oidc_login(
    portal: TestClient[Litestar],
    portal_url: str,
    dex: DexServer,
    *,
    email: str,
    groups: Sequence[str] | None = None,
) -> httpx.Response:
    callback = dex_round_trip(portal, portal_url, email=email, groups=groups)
    return portal.get(callback, follow_redirects=False)
