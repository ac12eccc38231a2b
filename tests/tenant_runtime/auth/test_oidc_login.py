"""OpenID Connect login against a real Dex: JIT users, group roles, and every refusal."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from tenant_runtime.auth.config import OidcSettings, parse_sso_section
from tenant_runtime.auth.errors import AuthError
from tenant_runtime.auth.models import AuthSession, User
from tenant_runtime.core.settings import RuntimeSettings
from tests.support.dex import DexServer, free_port
from tests.tenant_runtime.auth.conftest import ALICE, StaticSite, oidc_section
from tests.tenant_runtime.auth.oidc_flow import dex_round_trip, oidc_login

pytestmark = pytest.mark.sso

Configure = Callable[[dict[str, Any] | None], None]


def _refusal(logs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(entry for entry in logs if entry["log_level"] == "warning")


@pytest.fixture
def sso_on(dex: DexServer, configure_sso: Configure) -> dict[str, Any]:
    section = oidc_section(dex)
    configure_sso(section)
    return section


@pytest.fixture
def portal_url(migrated_settings: RuntimeSettings) -> str:
    return migrated_settings.portal_url


@pytest.mark.usefixtures("sso_on")
def test_password_login_signs_the_user_in(
    portal: TestClient[Litestar], portal_url: str, dex: DexServer
) -> None:
    response = oidc_login(portal, portal_url, dex, email=ALICE.email)
    assert response.status_code == 302
    assert portal.get("/auth/me").json()["email"] == ALICE.email


@pytest.mark.usefixtures("sso_on")
def test_first_login_creates_the_user_with_the_default_role(
    portal: TestClient[Litestar], portal_url: str, dex: DexServer, session: Session
) -> None:
    oidc_login(portal, portal_url, dex, email=ALICE.email)
    user = session.scalars(select(User).where(User.email == ALICE.email)).one()
    assert (user.role, user.source) == ("viewer", "sso")


@pytest.mark.usefixtures("sso_on")
def test_an_admin_group_maps_to_the_admin_role(
    portal: TestClient[Litestar], portal_url: str, dex: DexServer
) -> None:
    oidc_login(portal, portal_url, dex, email="ada@example.com", groups=["portal-admins"])
    assert portal.get("/auth/me").json()["role"] == "admin"


@pytest.mark.usefixtures("sso_on")
def test_the_strongest_mapped_group_wins(
    portal: TestClient[Litestar], portal_url: str, dex: DexServer
) -> None:
    groups = ["developers", "portal-admins", "unmapped"]
    oidc_login(portal, portal_url, dex, email="ada@example.com", groups=groups)
    assert portal.get("/auth/me").json()["role"] == "admin"


@pytest.mark.usefixtures("sso_on")
def test_a_role_follows_the_groups_of_the_latest_login(
    portal: TestClient[Litestar], portal_url: str, dex: DexServer
) -> None:
    oidc_login(portal, portal_url, dex, email="ada@example.com", groups=["portal-admins"])
    portal.cookies.clear()
    oidc_login(portal, portal_url, dex, email="ada@example.com", groups=["developers"])
    assert portal.get("/auth/me").json()["role"] == "member"


def test_enforced_sso_still_lets_users_in_through_the_provider(
    portal: TestClient[Litestar], portal_url: str, dex: DexServer, configure_sso: Configure
) -> None:
    configure_sso(oidc_section(dex, enforced=True))
    oidc_login(portal, portal_url, dex, email="ada@example.com", groups=["developers"])
    assert portal.get("/auth/me").json()["role"] == "member"


@pytest.mark.usefixtures("sso_on")
def test_a_deactivated_user_cannot_log_in_again(
    portal: TestClient[Litestar], portal_url: str, dex: DexServer, engine: Engine
) -> None:
    oidc_login(portal, portal_url, dex, email=ALICE.email)
    portal.cookies.clear()
    with Session(engine) as session, session.begin():
        session.execute(update(User).values(active=False))
    with capture_logs() as logs:
        response = oidc_login(portal, portal_url, dex, email=ALICE.email)
    assert (response.status_code, _refusal(logs)["event"]) == (403, "login.user_deactivated")


@pytest.mark.usefixtures("sso_on")
def test_a_replayed_callback_is_refused(
    portal: TestClient[Litestar], portal_url: str, dex: DexServer
) -> None:
    callback = dex_round_trip(portal, portal_url, email=ALICE.email)
    portal.get(callback, follow_redirects=False)
    with capture_logs() as logs:
        response = portal.get(callback, follow_redirects=False)
    assert (response.status_code, _refusal(logs)["event"]) == (401, "login.unknown_state")


@pytest.mark.usefixtures("sso_on")
def test_a_callback_in_another_browser_is_refused(
    portal: TestClient[Litestar], portal_url: str, dex: DexServer, app: Litestar
) -> None:
    callback = dex_round_trip(portal, portal_url, email=ALICE.email)
    with TestClient(app, base_url="http://127.0.0.1") as other_browser, capture_logs() as logs:
        response = other_browser.get(callback, follow_redirects=False)
    assert (response.status_code, _refusal(logs)["event"]) == (
        401,
        "login.state_cookie_mismatch",
    )


def test_an_unreachable_provider_is_reported(
    portal: TestClient[Litestar], configure_sso: Configure, dex: DexServer
) -> None:
    section = oidc_section(dex)
    section["oidc"]["issuer"] = f"http://127.0.0.1:{free_port()}/dex"
    configure_sso(section)
    with capture_logs() as logs:
        response = portal.get("/auth/sso/start", follow_redirects=False)
    assert (response.status_code, _refusal(logs)["event"]) == (502, "oidc.discovery_unreachable")


def test_a_provider_answering_for_another_issuer_is_refused(
    portal: TestClient[Litestar], configure_sso: Configure, dex: DexServer, static_site: StaticSite
) -> None:
    # A discovery document that names Dex as its issuer, served from another address.
    document = portal.app.state.oidc_client.discover(dex.issuer)
    (static_site.root / "idp" / ".well-known").mkdir(parents=True)
    static_site.put(
        "idp/.well-known/openid-configuration",
        {
            "issuer": document.issuer,
            "authorization_endpoint": document.authorization_endpoint,
            "token_endpoint": document.token_endpoint,
            "jwks_uri": document.jwks_uri,
        },
    )
    section = oidc_section(dex)
    section["oidc"]["issuer"] = f"{static_site.url}/idp"
    configure_sso(section)
    with capture_logs() as logs:
        response = portal.get("/auth/sso/start", follow_redirects=False)
    assert (response.status_code, _refusal(logs)["event"]) == (502, "oidc.wrong_issuer")


@pytest.mark.usefixtures("sso_on")
def test_sso_login_is_refused_when_sso_is_off(
    portal: TestClient[Litestar], configure_sso: Configure
) -> None:
    configure_sso(None)
    assert portal.get("/auth/sso/start", follow_redirects=False).status_code == 404


# The ID token checks, on real tokens Dex issued to the portal.


@pytest.fixture
def issued_id_token(
    portal: TestClient[Litestar], portal_url: str, dex: DexServer, session: Session, sso_on: Any
) -> str:
    oidc_login(portal, portal_url, dex, email=ALICE.email)
    token = session.scalars(select(AuthSession.id_token)).one()
    assert token is not None
    return token


def _oidc(section: dict[str, Any]) -> OidcSettings:
    config = parse_sso_section(section)
    assert config is not None
    assert config.oidc is not None
    return config.oidc


def _check(
    app: Litestar, section: dict[str, Any], token: str, *, nonce: str, now: int | None = None
) -> str:
    """The log event of the refusal the token gets."""
    with pytest.raises(AuthError) as refused:
        app.state.oidc_client.validate_id_token(_oidc(section), token, nonce=nonce, now=now)
    return refused.value.log_event


def _claims(token: str) -> dict[str, Any]:
    """The payload, unverified: only to learn what the portal would have expected."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_an_expired_id_token_is_refused(
    app: Litestar, sso_on: dict[str, Any], issued_id_token: str
) -> None:
    claims = _claims(issued_id_token)
    later = int(claims["exp"]) + 3600
    assert _check(app, sso_on, issued_id_token, nonce=claims["nonce"], now=later) == (
        "token.expired"
    )


def test_an_id_token_for_another_client_is_refused(
    app: Litestar, sso_on: dict[str, Any], issued_id_token: str
) -> None:
    section = dict(sso_on, oidc=dict(sso_on["oidc"], client_id="someone-else"))
    nonce = _claims(issued_id_token)["nonce"]
    assert _check(app, section, issued_id_token, nonce=nonce) == "token.wrong_aud"


def test_an_id_token_with_another_nonce_is_refused(
    app: Litestar, sso_on: dict[str, Any], issued_id_token: str
) -> None:
    assert _check(app, sso_on, issued_id_token, nonce="not-the-nonce") == "token.wrong_nonce"


def test_an_id_token_with_a_bad_signature_is_refused(
    app: Litestar, sso_on: dict[str, Any], issued_id_token: str
) -> None:
    head, payload, signature = issued_id_token.split(".")
    tampered = f"{head}.{payload}.{signature[:-6]}AAAAAA"
    nonce = _claims(issued_id_token)["nonce"]
    assert _check(app, sso_on, tampered, nonce=nonce) == "token.bad_signature"


def test_a_fresh_id_token_passes(
    app: Litestar, sso_on: dict[str, Any], issued_id_token: str
) -> None:
    nonce = _claims(issued_id_token)["nonce"]
    claims = app.state.oidc_client.validate_id_token(
        _oidc(sso_on), issued_id_token, nonce=nonce, now=int(time.time())
    )
    assert claims["email"] == ALICE.email


@pytest.mark.usefixtures("sso_on")
def test_logout_after_sso_returns_to_the_login_page(
    portal: TestClient[Litestar], portal_url: str, dex: DexServer
) -> None:
    # Dex offers no end_session_endpoint, so the portal ends only its own session.
    oidc_login(portal, portal_url, dex, email=ALICE.email)
    response = portal.post("/auth/logout", follow_redirects=False)
    assert response.headers["location"] == "/auth/login"
