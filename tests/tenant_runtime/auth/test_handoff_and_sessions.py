"""Console handoff tickets, sessions, the principal middleware and logout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from tenant_runtime.app import create_app
from tenant_runtime.auth import keys
from tenant_runtime.auth.models import AuthSession, User
from tenant_runtime.auth.service import SESSION_COOKIE, utcnow
from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.migrate import migrate
from tests.tenant_runtime.auth.conftest import OTHER_TENANT_ID, ControlPlaneKeys, sso_section

pytestmark = pytest.mark.sso


def _enter(portal: TestClient[Litestar], ticket: str) -> Any:
    return portal.get("/auth/handoff", params={"ticket": ticket}, follow_redirects=False)


def _events(logs: list[dict[str, Any]]) -> list[str]:
    return [entry["event"] for entry in logs]


def _refusal(logs: list[dict[str, Any]]) -> dict[str, Any]:
    """The admin's line for a refusal: the first warning logged."""
    return next(entry for entry in logs if entry["log_level"] == "warning")


def test_handoff_signs_the_user_in(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    response = _enter(portal, control_plane.ticket(email="Olive@Example.com", role="member"))
    assert response.status_code == 302
    assert portal.get("/auth/me").json()["email"] == "olive@example.com"


def test_handoff_creates_the_user_just_in_time(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys, session: Session
) -> None:
    _enter(portal, control_plane.ticket(email="new@example.com", role="viewer"))
    user = session.scalars(select(User).where(User.email == "new@example.com")).one()
    assert (user.role, user.source) == ("viewer", "handoff")


def test_session_cookie_is_http_only(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    response = _enter(portal, control_plane.ticket())
    assert "httponly" in response.headers["set-cookie"].lower()


def test_a_replayed_ticket_is_refused(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    ticket = control_plane.ticket()
    _enter(portal, ticket)
    portal.cookies.clear()
    with capture_logs() as logs:
        response = _enter(portal, ticket)
    assert (response.status_code, "handoff.replayed_jti") == (401, _refusal(logs)["event"])
    assert "already used" in response.text


def test_an_expired_ticket_is_refused(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    ticket = control_plane.ticket(iat=1_700_000_000, exp=1_700_000_060)
    with capture_logs() as logs:
        response = _enter(portal, ticket)
    assert (response.status_code, _refusal(logs)["event"]) == (401, "token.expired")
    assert "expired" in response.text


def test_a_ticket_with_a_bad_signature_is_refused(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    forger = OKPKey.generate_key("Ed25519", parameters={"kid": control_plane.key.kid})
    claims = jwt.decode(control_plane.ticket(), control_plane.key, algorithms=["EdDSA"]).claims
    forged = jwt.encode({"alg": "EdDSA", "kid": forger.kid}, claims, forger, algorithms=["EdDSA"])
    with capture_logs() as logs:
        response = _enter(portal, forged)
    assert (response.status_code, _refusal(logs)["event"]) == (401, "token.bad_signature")


def test_a_ticket_from_another_issuer_is_refused(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    with capture_logs() as logs:
        response = _enter(portal, control_plane.ticket(iss="https://evil.example"))
    assert (response.status_code, _refusal(logs)["event"]) == (401, "token.wrong_iss")


def test_a_ticket_for_another_tenant_is_refused(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    ticket = control_plane.ticket(aud=f"backlot-runtime:{OTHER_TENANT_ID}")
    with capture_logs() as logs:
        response = _enter(portal, ticket)
    assert (response.status_code, _refusal(logs)["event"]) == (401, "token.wrong_aud")
    assert _refusal(logs)["presented"] == f"backlot-runtime:{OTHER_TENANT_ID}"


def test_a_ticket_signed_with_a_rotated_key_is_accepted(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "REFETCH_INTERVAL_SECONDS", 0.0)
    _enter(portal, control_plane.ticket())  # the runtime now holds the first key set
    portal.cookies.clear()
    control_plane.rotate()
    response = _enter(portal, control_plane.ticket(email="after@example.com"))
    assert response.status_code == 302


def test_enforced_sso_refuses_the_handoff(
    portal: TestClient[Litestar],
    control_plane: ControlPlaneKeys,
    configure_sso: Callable[[dict[str, Any] | None], None],
) -> None:
    configure_sso(sso_section(enforced=True))
    with capture_logs() as logs:
        response = _enter(portal, control_plane.ticket(role="admin"))
    assert (response.status_code, _refusal(logs)["event"]) == (403, "handoff.refused_sso_enforced")


def test_enforced_sso_lets_an_owner_break_glass(
    portal: TestClient[Litestar],
    control_plane: ControlPlaneKeys,
    configure_sso: Callable[[dict[str, Any] | None], None],
) -> None:
    configure_sso(sso_section(enforced=True))
    with capture_logs() as logs:
        _enter(portal, control_plane.ticket(role="admin", break_glass=True))
    assert "handoff.break_glass" in _events(logs)
    assert portal.get("/auth/me").json()["role"] == "admin"


def test_no_session_means_no_principal(portal: TestClient[Litestar]) -> None:
    assert portal.get("/auth/me").status_code == 401


def test_a_deactivated_user_loses_access_at_once(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys, engine: Engine
) -> None:
    _enter(portal, control_plane.ticket(email="leaver@example.com"))
    with Session(engine) as session, session.begin():
        session.execute(update(User).where(User.email == "leaver@example.com").values(active=False))
    assert portal.get("/auth/me").status_code == 401


def test_an_idle_session_expires(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys, engine: Engine
) -> None:
    _enter(portal, control_plane.ticket())
    with Session(engine) as session, session.begin():
        session.execute(update(AuthSession).values(last_seen_at=utcnow() - timedelta(hours=2)))
    assert portal.get("/auth/me").status_code == 401


def test_a_session_ends_at_its_absolute_limit(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys, engine: Engine
) -> None:
    _enter(portal, control_plane.ticket())
    with Session(engine) as session, session.begin():
        session.execute(update(AuthSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert portal.get("/auth/me").status_code == 401


def test_logout_ends_the_session(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    _enter(portal, control_plane.ticket())
    cookie = portal.cookies[SESSION_COOKIE]
    portal.post("/auth/logout", follow_redirects=False)
    portal.cookies.set(SESSION_COOKIE, cookie)
    assert portal.get("/auth/me").status_code == 401


@pytest.fixture
def other_portal(
    tmp_path: Path, runtime_settings: RuntimeSettings
) -> Iterator[TestClient[Litestar]]:
    settings = runtime_settings.model_copy(
        update={
            "tenant_id": OTHER_TENANT_ID,
            "database_url": f"sqlite:///{tmp_path / 'other' / 'runtime.db'}",
            "data_dir": tmp_path / "other",
        }
    )
    migrate(settings)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        yield client


def test_a_session_cookie_of_another_tenant_is_refused(
    portal: TestClient[Litestar],
    other_portal: TestClient[Litestar],
    control_plane: ControlPlaneKeys,
) -> None:
    _enter(portal, control_plane.ticket())
    other_portal.cookies.set(SESSION_COOKIE, portal.cookies[SESSION_COOKIE])
    with capture_logs() as logs:
        response = other_portal.get("/auth/me")
    assert (response.status_code, _refusal(logs)["event"]) == (401, "session.other_tenant_cookie")
