"""Console login through the organization's OIDC provider: a real Dex, the full code flow."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.orm import Session

from control_plane.core.settings import Settings
from control_plane.identity.models import Membership, Role, User
from control_plane.runtime_link.service import runtime_token
from tests.control_plane.factories import UserFactory
from tests.control_plane.identity.conftest import (
    CONSOLE_CALLBACK,
    DEX_ADMIN,
    DEX_STRANGER,
    Client,
    Console,
    hidden,
    running_portal,
)
from tests.control_plane.identity.test_sso_config import oidc_settings
from tests.support.dex import (
    LOCAL_CONNECTOR,
    PASSWORD,
    DexServer,
    connector_link,
    login_form_action,
)

pytestmark = [pytest.mark.sso, pytest.mark.integration]


def _enable_oidc(console: Console, dex: DexServer, settings: Settings) -> None:
    assert console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex)).status_code == 200
    test_id = console.api("POST", "/api/v1/tenant/sso/tests").json()["test"]["id"]
    reported = console.client.post(
        f"/internal/v1/runtime/sso-tests/{test_id}",
        json={"ok": True, "protocol": "oidc", "email": DEX_ADMIN.email},
        headers={
            "authorization": f"Bearer {runtime_token(settings, console.tenant.id)}",
            "x-backlot-tenant": str(console.tenant.id),
        },
    )
    assert reported.status_code == 202
    assert console.api("POST", "/api/v1/tenant/sso/enable").status_code == 200


def _member(session: Session, console: Console, email: str, role: Role) -> User:
    user = UserFactory.build(email=email, password_hash=None)
    session.add(user)
    session.flush()
    session.add(Membership(organization_id=console.organization.id, user_id=user.id, role=role))
    session.commit()
    return user


def _start(client: Client, identifier: str):  # type: ignore[no-untyped-def]
    client.cookies.clear()
    csrf = hidden(client.get("/login").text, "_csrf_token")
    return client.post(
        "/login/sso", data={"_csrf_token": csrf, "identifier": identifier}, follow_redirects=False
    )


def _sign_in_at_dex(authorization_url: str, email: str) -> str:
    """Dex's own pages, as a browser goes through them; the callback URL Dex sends back to."""
    with httpx.Client() as browser:
        chooser = browser.get(authorization_url)
        form = browser.get(
            connector_link(chooser.text, str(chooser.url), LOCAL_CONNECTOR), follow_redirects=True
        )
        response = browser.post(
            login_form_action(form.text, str(form.url)), data={"login": email, "password": PASSWORD}
        )
        for _ in range(10):
            location = response.headers.get("location")
            assert location, f"Dex stopped at {response.url}: {response.text[:300]}"
            target = str(response.url.join(location))
            if target.startswith(CONSOLE_CALLBACK):
                return target
            response = browser.get(target)
    raise AssertionError("Dex redirected too often")


def _callback_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_an_admin_logs_in_to_the_console_through_dex(
    console: Console, dex: DexServer, settings: Settings, db_session: Session
) -> None:
    _enable_oidc(console, dex, settings)
    _member(db_session, console, DEX_ADMIN.email, Role.ADMIN)
    started = _start(console.client, DEX_ADMIN.email)
    assert started.status_code == 303
    authorization = started.headers["location"]
    query = parse_qs(urlsplit(authorization).query)
    assert authorization.startswith(f"{dex.issuer}/auth?")
    assert (query["code_challenge_method"], query["redirect_uri"]) == (["S256"], [CONSOLE_CALLBACK])
    assert {"state", "nonce", "code_challenge"} <= query.keys()

    done = console.client.get(
        _callback_path(_sign_in_at_dex(authorization, DEX_ADMIN.email)), follow_redirects=False
    )
    assert (done.status_code, done.headers["location"]) == (303, "/console")
    assert console.client.get("/api/v1/tenant").json()["id"] == str(console.tenant.id)


def test_the_organization_slug_also_starts_the_sso_login(
    console: Console, dex: DexServer, settings: Settings
) -> None:
    _enable_oidc(console, dex, settings)
    started = _start(console.client, console.organization.slug)
    assert started.headers["location"].startswith(f"{dex.issuer}/auth?")


def test_a_provider_user_without_a_console_account_is_refused(
    console: Console, dex: DexServer, settings: Settings
) -> None:
    _enable_oidc(console, dex, settings)
    authorization = _start(console.client, console.organization.slug).headers["location"]
    done = console.client.get(_callback_path(_sign_in_at_dex(authorization, DEX_STRANGER.email)))
    assert done.status_code == 403
    assert f"{DEX_STRANGER.email} has no console account in this organization" in done.text
    assert console.client.get("/api/v1/tenant").status_code == 401


def test_a_callback_with_another_state_is_refused(
    console: Console, dex: DexServer, settings: Settings, db_session: Session
) -> None:
    _enable_oidc(console, dex, settings)
    _member(db_session, console, DEX_ADMIN.email, Role.ADMIN)
    authorization = _start(console.client, DEX_ADMIN.email).headers["location"]
    callback = urlsplit(_sign_in_at_dex(authorization, DEX_ADMIN.email))
    code = parse_qs(callback.query)["code"][0]
    done = console.client.get("/login/sso/callback", params={"code": code, "state": "forged"})
    assert done.status_code == 401
    assert "does not match the one started here" in done.text


def test_a_callback_is_good_once(
    console: Console, dex: DexServer, settings: Settings, db_session: Session
) -> None:
    _enable_oidc(console, dex, settings)
    _member(db_session, console, DEX_ADMIN.email, Role.ADMIN)
    authorization = _start(console.client, DEX_ADMIN.email).headers["location"]
    callback = _callback_path(_sign_in_at_dex(authorization, DEX_ADMIN.email))
    assert console.client.get(callback, follow_redirects=False).status_code == 303
    console.client.cookies.clear()
    replay = console.client.get(callback)
    assert replay.status_code == 401
    assert "This sign-in was not started here" in replay.text


def test_an_organization_without_sso_is_told_to_use_its_password(
    client: Client, db_session: Session
) -> None:
    _, organization, _ = running_portal(db_session)
    db_session.commit()
    response = _start(client, organization.slug)
    assert response.status_code == 403
    assert "No single sign-on is set up for that email or organization" in response.text
