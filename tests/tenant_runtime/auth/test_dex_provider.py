"""The Dex fixture itself: a real provider whose login form and group proxy both work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.dex import (
    LOCAL_CONNECTOR,
    PASSWORD,
    PROXY_CONNECTOR,
    DexClient,
    DexServer,
    DexUnavailable,
    DexUser,
    connector_link,
    login_form_action,
    proxy_headers,
    run_dex,
)

pytestmark = pytest.mark.sso

REDIRECT_URI = "http://127.0.0.1:9/callback"
CLIENT = DexClient(id="fixture-test", secret="fixture-secret", redirect_uris=[REDIRECT_URI])
ALICE = DexUser(email="alice@example.com", username="alice", user_id="u-alice")


@pytest.fixture
def dex(tmp_path: Path) -> Iterator[DexServer]:
    try:
        with run_dex(tmp_path / "dex", [CLIENT], [ALICE]) as server:
            yield server
    except DexUnavailable as error:
        pytest.fail(f"Dex is needed: {error}", pytrace=False)


def _authorize(http: httpx.Client, dex: DexServer) -> httpx.Response:
    return http.get(
        f"{dex.issuer}/auth",
        params={
            "client_id": CLIENT.id,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "openid email profile groups",
            "state": "state-of-the-test",
        },
    )


def _id_token_claims(http: httpx.Client, dex: DexServer, location: str) -> dict[str, object]:
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = http.post(
        f"{dex.issuer}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(CLIENT.id, CLIENT.secret),
    ).json()
    keys = KeySet.import_key_set(http.get(f"{dex.issuer}/keys").json())
    return dict(jwt.decode(tokens["id_token"], keys).claims)


def test_password_form_login_yields_an_id_token(dex: DexServer) -> None:
    with httpx.Client() as http:
        chooser = _authorize(http, dex)
        form = http.get(
            connector_link(chooser.text, str(chooser.url), LOCAL_CONNECTOR),
            follow_redirects=True,
        )
        done = http.post(
            login_form_action(form.text, str(form.url)),
            data={"login": ALICE.email, "password": PASSWORD},
        )
        location = _follow_to_client(http, done)
        claims = _id_token_claims(http, dex, location)
    assert claims["email"] == ALICE.email


def test_proxy_login_carries_groups(dex: DexServer) -> None:
    # The proxy in front of Dex adds its headers to every request it forwards.
    headers = proxy_headers("bob@example.com", ["platform-admins", "developers"])
    with httpx.Client(headers=headers) as http:
        chooser = _authorize(http, dex)
        response = http.get(connector_link(chooser.text, str(chooser.url), PROXY_CONNECTOR))
        location = _follow_to_client(http, response)
        claims = _id_token_claims(http, dex, location)
    assert claims["groups"] == ["platform-admins", "developers"]


def _follow_to_client(http: httpx.Client, response: httpx.Response) -> str:
    """Follow Dex's redirects until the one that leaves Dex for the client."""
    for _ in range(10):
        location = response.headers.get("location")
        if location is None:
            raise AssertionError(f"Dex stopped at {response.url}: {response.text[:500]}")
        target = str(response.url.join(location))
        if target.startswith(REDIRECT_URI):
            return target
        response = http.get(target)
    raise AssertionError("Dex redirected too often")
