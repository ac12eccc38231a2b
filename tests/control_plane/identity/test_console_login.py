"""Console login: address verification and password reset by mail, TOTP, lockout, enforced SSO."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from email.message import EmailMessage

import pyotp
import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.errors import ServiceUnavailable
from control_plane.core.settings import Settings
from control_plane.identity import mail
from control_plane.identity.models import AccountToken, Role, User
from control_plane.tenants.models import TenantEvent
from tests.control_plane.factories import PASSWORD
from tests.control_plane.identity.conftest import (
    Client,
    Console,
    enforce_sso,
    hidden,
    running_portal,
)
from tests.support.dex import free_port

pytestmark = [pytest.mark.sso, pytest.mark.integration]

NEW_PASSWORD = "a-brand-new-password-42"


def _link(message: EmailMessage, path: str) -> str:
    body = message.get_content()
    match = re.search(rf"http://testserver\.local({re.escape(path)}\?token=[\w-]+)", body)
    assert match, f"no {path} link in: {body}"
    return match.group(1)


def _password_login(client: Client, email: str, password: str):  # type: ignore[no-untyped-def]
    csrf = hidden(client.get("/login").text, "_csrf_token")
    return client.post(
        "/login",
        data={"_csrf_token": csrf, "email": email, "password": password},
        follow_redirects=False,
    )


def _reload(session: Session, user: User) -> User:
    session.expire_all()
    fresh = session.get(User, user.id)
    assert fresh is not None
    return fresh


# --- address verification


def test_a_verification_link_is_mailed_and_confirms_the_address(
    console: Console, settings: Settings, db_session: Session
) -> None:
    assert console.post_form("/account/verify-email").status_code == 200
    (message,) = mail.captured(settings)
    assert (message["To"], message["Subject"]) == (
        console.user.email,
        "Confirm your email address for Backlot",
    )
    page = console.client.get(_link(message, "/account/verify-email"))
    assert page.status_code == 200
    assert _reload(db_session, console.user).email_verified_at is not None


def test_a_verification_link_works_once(console: Console, settings: Settings) -> None:
    console.post_form("/account/verify-email")
    link = _link(mail.captured(settings)[0], "/account/verify-email")
    console.client.get(link)
    again = console.client.get(link)
    assert again.status_code == 400
    assert "invalid, used or expired" in again.text


def test_an_expired_verification_link_is_refused(
    console: Console, settings: Settings, db_session: Session
) -> None:
    console.post_form("/account/verify-email")
    link = _link(mail.captured(settings)[0], "/account/verify-email")
    for token in db_session.scalars(select(AccountToken)):
        token.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db_session.commit()
    assert console.client.get(link).status_code == 400
    assert _reload(db_session, console.user).email_verified_at is None


def test_only_the_hash_of_a_mailed_token_is_stored(
    console: Console, settings: Settings, db_session: Session
) -> None:
    console.post_form("/account/verify-email")
    token = _link(mail.captured(settings)[0], "/account/verify-email").split("token=")[1]
    stored = db_session.scalars(select(AccountToken.token_sha256)).one()
    assert stored != token
    assert len(stored) == 64


# --- password reset


def test_a_reset_link_sets_a_new_password(
    client: Client, db_session: Session, settings: Settings
) -> None:
    user, _, _ = running_portal(db_session)
    db_session.commit()
    csrf = hidden(client.get("/login/forgot").text, "_csrf_token")
    sent = client.post("/login/forgot", data={"_csrf_token": csrf, "email": user.email})
    assert "a reset link is on its way" in sent.text
    link = _link(mail.captured(settings)[0], "/login/reset")
    form = client.get(link)
    done = client.post(
        "/login/reset",
        data={
            "_csrf_token": hidden(form.text, "_csrf_token"),
            "token": hidden(form.text, "token"),
            "password": NEW_PASSWORD,
        },
    )
    assert "Your password is changed" in done.text
    assert _password_login(client, user.email, PASSWORD).status_code == 401
    assert _password_login(client, user.email, NEW_PASSWORD).status_code == 303


def test_a_reset_for_an_unknown_address_says_the_same_and_sends_nothing(
    client: Client, settings: Settings
) -> None:
    csrf = hidden(client.get("/login/forgot").text, "_csrf_token")
    sent = client.post("/login/forgot", data={"_csrf_token": csrf, "email": "nobody@example.com"})
    assert "a reset link is on its way" in sent.text
    assert mail.captured(settings) == []


def test_a_reset_link_works_once(client: Client, db_session: Session, settings: Settings) -> None:
    user, _, _ = running_portal(db_session)
    db_session.commit()
    csrf = hidden(client.get("/login/forgot").text, "_csrf_token")
    client.post("/login/forgot", data={"_csrf_token": csrf, "email": user.email})
    token = _link(mail.captured(settings)[0], "/login/reset").split("token=")[1]
    form = {"_csrf_token": csrf, "token": token, "password": NEW_PASSWORD}
    assert client.post("/login/reset", data=form).status_code == 200
    again = client.post("/login/reset", data={**form, "password": "yet-another-password-9"})
    assert again.status_code == 400
    assert "invalid, used or expired" in again.text


def test_a_short_new_password_is_refused(
    client: Client, db_session: Session, settings: Settings
) -> None:
    user, _, _ = running_portal(db_session)
    db_session.commit()
    csrf = hidden(client.get("/login/forgot").text, "_csrf_token")
    client.post("/login/forgot", data={"_csrf_token": csrf, "email": user.email})
    token = _link(mail.captured(settings)[0], "/login/reset").split("token=")[1]
    response = client.post(
        "/login/reset", data={"_csrf_token": csrf, "token": token, "password": "short"}
    )
    assert response.status_code == 422
    assert "at least 12 characters" in response.text


# --- mail through a real SMTP server


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(envelope.content)  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, _Inbox]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", inbox
    controller.stop()


def test_mail_goes_through_the_configured_smtp_server(
    smtp_server: tuple[str, _Inbox], settings: Settings
) -> None:
    url, inbox = smtp_server
    configured = settings.model_copy(update={"smtp_url": SecretStr(url)})
    mail.send(configured, "someone@example.com", "Hello", "A body")
    assert len(inbox.messages) == 1
    assert b"Subject: Hello" in inbox.messages[0]
    assert mail.captured(configured) == []


def test_an_unreachable_smtp_server_is_a_clear_503(settings: Settings) -> None:
    configured = settings.model_copy(
        update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{free_port()}")}
    )
    with pytest.raises(ServiceUnavailable, match="Mail could not be sent just now"):
        mail.send(configured, "someone@example.com", "Hello", "A body")


# --- failed logins


def test_an_account_locks_after_repeated_failures(
    client: Client, db_session: Session, settings: Settings
) -> None:
    user, _, _ = running_portal(db_session)
    db_session.commit()
    for _ in range(settings.login_max_failures):
        assert _password_login(client, user.email, "wrong-password-!").status_code == 401
    locked = _password_login(client, user.email, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.text


def test_a_lock_ends_after_its_time(
    client: Client, db_session: Session, settings: Settings
) -> None:
    user, _, _ = running_portal(db_session)
    db_session.commit()
    for _ in range(settings.login_max_failures):
        _password_login(client, user.email, "wrong-password-!")
    fresh = _reload(db_session, user)
    assert fresh.locked_until is not None
    fresh.locked_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db_session.commit()
    assert _password_login(client, user.email, PASSWORD).status_code == 303


def test_a_success_resets_the_failure_count(
    client: Client, db_session: Session, settings: Settings
) -> None:
    user, _, _ = running_portal(db_session)
    db_session.commit()
    for _ in range(settings.login_max_failures - 1):
        _password_login(client, user.email, "wrong-password-!")
    assert _reload(db_session, user).failed_logins == settings.login_max_failures - 1
    assert _password_login(client, user.email, PASSWORD).status_code == 303
    assert _reload(db_session, user).failed_logins == 0


# --- TOTP


def _enrol(console: Console) -> tuple[str, list[str]]:
    started = console.post_form("/account/totp/start")
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', started.text)
    assert secret, started.text
    assert "otpauth://totp/Backlot:" in started.text
    confirmed = console.post_form(
        "/account/totp/confirm", {"code": pyotp.TOTP(secret.group(1)).now()}
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = re.findall(r"<li><code>([0-9a-f]{6}-[0-9a-f]{6})</code></li>", confirmed.text)
    assert len(codes) == 10
    return secret.group(1), codes


def _later(session: Session, user: User) -> None:
    """As if the enrolment's code were from a while ago, so the current code is unused."""
    _reload(session, user).totp_last_step = None
    session.commit()


def test_a_wrong_first_code_does_not_turn_totp_on(console: Console, db_session: Session) -> None:
    console.post_form("/account/totp/start")
    response = console.post_form("/account/totp/confirm", {"code": "000000"})
    assert response.status_code == 422
    assert _reload(db_session, console.user).totp_secret_encrypted is None


def test_the_totp_seed_is_encrypted_at_rest(console: Console, db_session: Session) -> None:
    secret, _ = _enrol(console)
    stored = _reload(db_session, console.user).totp_secret_encrypted
    assert stored is not None
    assert secret not in stored


def test_with_totp_a_password_alone_does_not_log_in(console: Console) -> None:
    _enrol(console)
    console.client.cookies.clear()
    response = _password_login(console.client, console.user.email, PASSWORD)
    assert (response.status_code, response.headers["location"]) == (303, "/login/totp")
    assert console.client.get("/api/v1/tenant").status_code == 401


def test_a_totp_code_completes_the_login(console: Console, db_session: Session) -> None:
    secret, _ = _enrol(console)
    _later(db_session, console.user)
    console.client.cookies.clear()
    _password_login(console.client, console.user.email, PASSWORD)
    csrf = hidden(console.client.get("/login/totp").text, "_csrf_token")
    code = pyotp.TOTP(secret).now()
    done = console.client.post(
        "/login/totp", data={"_csrf_token": csrf, "code": code}, follow_redirects=False
    )
    assert done.status_code == 303
    assert console.client.get("/api/v1/tenant").status_code == 200


def test_a_wrong_totp_code_is_refused(console: Console) -> None:
    _enrol(console)
    console.client.cookies.clear()
    _password_login(console.client, console.user.email, PASSWORD)
    csrf = hidden(console.client.get("/login/totp").text, "_csrf_token")
    refused = console.client.post("/login/totp", data={"_csrf_token": csrf, "code": "123456"})
    assert refused.status_code == 401
    assert console.client.get("/api/v1/tenant").status_code == 401


def test_a_totp_code_is_good_once(console: Console) -> None:
    secret, _ = _enrol(console)
    code = pyotp.TOTP(secret).now()
    for _ in range(2):
        console.client.cookies.clear()
        _password_login(console.client, console.user.email, PASSWORD)
        csrf = hidden(console.client.get("/login/totp").text, "_csrf_token")
        last = console.client.post(
            "/login/totp", data={"_csrf_token": csrf, "code": code}, follow_redirects=False
        )
    # The enrolment used the current step already: the same code is spent.
    assert last.status_code == 401


def test_a_recovery_code_logs_in_once(console: Console) -> None:
    _, codes = _enrol(console)
    statuses = []
    for _ in range(2):
        console.client.cookies.clear()
        _password_login(console.client, console.user.email, PASSWORD)
        csrf = hidden(console.client.get("/login/totp").text, "_csrf_token")
        statuses.append(
            console.client.post(
                "/login/totp", data={"_csrf_token": csrf, "code": codes[0]}, follow_redirects=False
            ).status_code
        )
    assert statuses == [303, 401]


# --- enforced SSO and the owners' break-glass


def test_enforced_sso_refuses_a_members_password_login(client: Client, db_session: Session) -> None:
    user, _, tenant = running_portal(db_session, role=Role.MEMBER)
    enforce_sso(db_session, tenant)
    db_session.commit()
    response = _password_login(client, user.email, PASSWORD)
    assert response.status_code == 403
    assert "Your organization signs in with single sign-on" in response.text


def test_enforced_sso_refuses_an_admins_password_login(client: Client, db_session: Session) -> None:
    user, _, tenant = running_portal(db_session, role=Role.ADMIN)
    enforce_sso(db_session, tenant)
    db_session.commit()
    assert _password_login(client, user.email, PASSWORD).status_code == 403


def test_an_owner_breaks_glass_with_a_password_and_it_is_recorded(
    client: Client, db_session: Session
) -> None:
    user, _, tenant = running_portal(db_session)
    enforce_sso(db_session, tenant)
    db_session.commit()
    assert _password_login(client, user.email, PASSWORD).status_code == 303
    events = db_session.scalars(
        select(TenantEvent).where(
            TenantEvent.tenant_id == tenant.id, TenantEvent.reason == "BreakGlassLogin"
        )
    ).all()
    assert [e.actor for e in events] == [f"user:{user.id}"]


def test_an_owners_break_glass_needs_the_totp_code_when_enrolled(
    console: Console, db_session: Session
) -> None:
    secret, _ = _enrol(console)
    _later(db_session, console.user)
    enforce_sso(db_session, console.tenant)
    db_session.commit()
    console.client.cookies.clear()
    first = _password_login(console.client, console.user.email, PASSWORD)
    assert first.headers["location"] == "/login/totp"
    assert console.client.get("/api/v1/tenant").status_code == 401
    csrf = hidden(console.client.get("/login/totp").text, "_csrf_token")
    code = pyotp.TOTP(secret).now()
    done = console.client.post(
        "/login/totp", data={"_csrf_token": csrf, "code": code}, follow_redirects=False
    )
    assert done.status_code == 303
    reasons = db_session.scalars(
        select(TenantEvent.reason).where(TenantEvent.tenant_id == console.tenant.id)
    ).all()
    assert "BreakGlassLogin" in reasons


def test_a_wrong_password_is_refused_before_sso_enforcement_is_revealed(
    client: Client, db_session: Session
) -> None:
    user, _, tenant = running_portal(db_session, role=Role.MEMBER)
    enforce_sso(db_session, tenant)
    db_session.commit()
    response = _password_login(client, user.email, "wrong-password-!")
    assert response.status_code == 401
    assert "Your organization signs in with single sign-on" not in response.text


def test_totp_is_turned_off_with_the_password_and_a_code(
    console: Console, db_session: Session
) -> None:
    _, codes = _enrol(console)
    refused = console.post_form("/account/totp/disable", {"password": PASSWORD, "code": "000000"})
    assert refused.status_code == 403
    done = console.post_form("/account/totp/disable", {"password": PASSWORD, "code": codes[1]})
    assert done.status_code == 200
    assert _reload(db_session, console.user).totp_secret_encrypted is None


def test_a_pending_second_factor_expires(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    from control_plane.identity import routes  # noqa: PLC0415

    secret, _ = _enrol(console)
    console.client.cookies.clear()
    _password_login(console.client, console.user.email, PASSWORD)
    csrf = hidden(console.client.get("/login/totp").text, "_csrf_token")
    monkeypatch.setattr(routes, "SECOND_FACTOR_WINDOW_SECONDS", -1)
    response = console.client.post(
        "/login/totp", data={"_csrf_token": csrf, "code": pyotp.TOTP(secret).now()}
    )
    assert response.status_code == 401
    assert "That took too long; log in again." in response.text
