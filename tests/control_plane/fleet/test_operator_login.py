"""Operator sign-in through a real OpenID provider (Dex): an operator gets a token that
expires; anyone else is refused and the refusal is audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from litestar.testing import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.audit import service as audit
from control_plane.core.settings import Settings
from tests.control_plane.fleet.conftest import Client
from tests.support.dex import (
    LOCAL_CONNECTOR,
    PASSWORD,
    DexClient,
    DexServer,
    DexUnavailable,
    DexUser,
    connector_link,
    login_form_action,
    run_dex,
)

pytestmark = [pytest.mark.fleet, pytest.mark.sso, pytest.mark.integration]

PUBLIC_URL = "http://testserver.local"
OPERATOR = DexUser(email="ops@vendor.example", username="ops", user_id="op-1")
STRANGER = DexUser(email="someone@example.com", username="someone", user_id="st-1")


@pytest.fixture
def dex(tmp_path: Path) -> Iterator[DexServer]:
    client = DexClient(
        id="backlot-operators",
        secret="operators-secret",
        redirect_uris=[f"{PUBLIC_URL}/admin/v1/login/callback"],
    )
    try:
        with run_dex(tmp_path / "dex", [client], [OPERATOR, STRANGER]) as server:
            yield server
    except DexUnavailable as exc:
        pytest.fail(f"Dex is needed: {exc}", pytrace=False)


@pytest.fixture
def login_client(
    settings: Settings, sessions: sessionmaker[Session], dex: DexServer
) -> Iterator[Client]:
    configured = settings.model_copy(
        update={
            "public_url": PUBLIC_URL,
            "operator_oidc_issuer": dex.issuer,
            "operator_oidc_client_id": "backlot-operators",
            "operator_oidc_client_secret": SecretStr("operators-secret"),
            "operator_oidc_scopes": json.dumps({OPERATOR.email: ["read", "operate"]}),
        }
    )
    with TestClient(app=create_app(configured, sessions=sessions)) as client:
        yield client


def _sign_in(client: Client, email: str) -> httpx.Response:
    """Start at the control plane, log in at Dex's password form, come back."""
    start = client.get("/admin/v1/login", follow_redirects=False)
    assert start.status_code == 302, start.text
    with httpx.Client() as browser:
        chooser = browser.get(start.headers["location"])
        form = browser.get(
            connector_link(chooser.text, str(chooser.url), LOCAL_CONNECTOR), follow_redirects=True
        )
        response = browser.post(
            login_form_action(form.text, str(form.url)),
            data={"login": email, "password": PASSWORD},
        )
        for _ in range(10):
            target = str(response.url.join(response.headers["location"]))
            if target.startswith(PUBLIC_URL):
                parts = urlsplit(target)
                return client.get(f"{parts.path}?{parts.query}")
            response = browser.get(target)
    raise AssertionError("Dex never sent the browser back")


def test_an_operator_signs_in_and_gets_a_token_that_works(login_client: Client) -> None:
    signed_in = _sign_in(login_client, OPERATOR.email).json()
    whoami = login_client.get(
        "/admin/v1/whoami", headers={"Authorization": f"Bearer {signed_in['token']}"}
    )
    assert whoami.json() == {"operator": OPERATOR.email, "scopes": ["operate", "read"]}


def test_the_signed_in_token_expires(login_client: Client) -> None:
    signed_in = _sign_in(login_client, OPERATOR.email).json()
    assert signed_in["expires_at"] is not None


def test_someone_who_is_not_an_operator_is_refused_and_audited(
    login_client: Client, db_session: Session
) -> None:
    response = _sign_in(login_client, STRANGER.email)
    denied = audit.entries(db_session, action="operator.login-denied")
    assert (response.status_code, [e.actor for e in denied]) == (403, [f"oidc:{STRANGER.email}"])


def test_a_callback_that_was_not_started_here_is_refused(login_client: Client) -> None:
    response = login_client.get("/admin/v1/login/callback?code=stolen&state=forged")
    assert response.status_code == 401


def test_sign_in_without_a_provider_says_to_use_a_token(client: Client) -> None:
    response = client.get("/admin/v1/login", follow_redirects=False)
    assert (response.status_code, "use an operator token" in response.json()["detail"]) == (
        404,
        True,
    )
