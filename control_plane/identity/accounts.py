"""Console accounts: address verification, password reset, TOTP, failed-login lockout.

Links sent by mail carry a random token; only its sha256 is stored, it expires, and it is
good once. Services flush; the request commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time

import pyotp
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from control_plane.core.crypto import secret_box
from control_plane.core.errors import DomainError, ValidationFailed
from control_plane.core.security import hash_password
from control_plane.core.settings import Settings
from control_plane.identity import mail
from control_plane.identity.models import AccountToken, TokenPurpose, User

MIN_PASSWORD_LENGTH = 12
RECOVERY_CODES = 10
TOTP_ISSUER = "Backlot"


class TokenInvalid(DomainError):
    status_code = 400


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def issue_token(session: Session, user: User, purpose: TokenPurpose, lifetime_seconds: int) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose,
            token_sha256=_sha256(token),
            expires_at=_now() + dt.timedelta(seconds=lifetime_seconds),
        )
    )
    session.flush()
    return token


def peek_token(session: Session, token: str, purpose: TokenPurpose) -> AccountToken:
    row = session.scalar(
        select(AccountToken).where(
            AccountToken.token_sha256 == _sha256(token), AccountToken.purpose == purpose
        )
    )
    if row is None or row.used_at is not None or row.expires_at <= _now():
        raise TokenInvalid("This link is invalid, used or expired; ask for a new one.")
    return row


def consume_token(session: Session, token: str, purpose: TokenPurpose) -> User:
    """The user the token was sent to; the token (and its siblings) cannot be used again."""
    row = peek_token(session, token, purpose)
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise TokenInvalid("This link is invalid, used or expired; ask for a new one.")
    session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user.id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
        )
        .values(used_at=_now())
    )
    session.flush()
    return user


def send_verification(session: Session, settings: Settings, user: User) -> None:
    token = issue_token(
        session, user, TokenPurpose.VERIFY_EMAIL, settings.email_verification_seconds
    )
    link = f"{settings.resolved_public_url}/account/verify-email?token={token}"
    mail.send(
        settings,
        user.email,
        "Confirm your email address for Backlot",
        f"Confirm that this address is yours by opening this link:\n\n{link}\n\n"
        f"It works once and expires in {settings.email_verification_seconds // 3600} hours.",
    )


def verify_email(session: Session, token: str) -> User:
    user = consume_token(session, token, TokenPurpose.VERIFY_EMAIL)
    user.email_verified_at = user.email_verified_at or _now()
    session.flush()
    return user


def request_password_reset(session: Session, settings: Settings, email: str) -> None:
    """Mail a reset link if the account exists; say nothing either way."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active:
        return
    token = issue_token(session, user, TokenPurpose.RESET_PASSWORD, settings.password_reset_seconds)
    link = f"{settings.resolved_public_url}/login/reset?token={token}"
    mail.send(
        settings,
        user.email,
        "Reset your Backlot password",
        f"Someone (we hope you) asked to reset your Backlot password. Choose a new one here:\n\n"
        f"{link}\n\nIt works once and expires in {settings.password_reset_seconds // 60} "
        f"minutes. If you did not ask, ignore this message.",
    )


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            {"password": f"Use at least {MIN_PASSWORD_LENGTH} characters for your password."}
        )


def reset_password(session: Session, token: str, password: str) -> User:
    check_new_password(password)
    user = consume_token(session, token, TokenPurpose.RESET_PASSWORD)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    # Receiving the mail proves the address too.
    user.email_verified_at = user.email_verified_at or _now()
    session.flush()
    return user


# --- failed logins


def locked_for(user: User) -> int:
    """Seconds the account stays locked after too many failures (0: not locked)."""
    if user.locked_until is None:
        return 0
    return max(0, int((user.locked_until - _now()).total_seconds()))


def record_failure(session: Session, settings: Settings, user: User) -> None:
    """Count a failed attempt; lock the account once the limit is reached."""
    user.failed_logins += 1
    if user.failed_logins >= settings.login_max_failures:
        user.locked_until = _now() + dt.timedelta(seconds=settings.login_lockout_seconds)
        user.failed_logins = 0
    session.flush()


def record_success(session: Session, user: User) -> None:
    user.failed_logins = 0
    user.locked_until = None
    session.flush()


# --- TOTP


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def _matching_step(secret: str, code: str, at: float) -> int | None:
    totp = pyotp.TOTP(secret)
    code = code.strip().replace(" ", "")
    # One step either side: the phone's clock and ours may disagree by a few seconds.
    for offset in (-1, 0, 1):
        moment = at + offset * totp.interval
        if secrets.compare_digest(totp.at(moment), code):
            return int(totp.timecode(dt.datetime.fromtimestamp(moment, dt.UTC)))
    return None


def enable_totp(
    session: Session, settings: Settings, user: User, secret: str, code: str
) -> list[str]:
    """Turn TOTP on once the user proved their app has the secret; the recovery codes, once."""
    step = _matching_step(secret, code, time.time())
    if step is None:
        raise ValidationFailed({"code": "That code does not match; check your app's clock."})
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    user.totp_secret_encrypted = secret_box(settings).encrypt(secret)
    user.totp_last_step = step
    user.recovery_code_hashes = [_sha256(c) for c in codes]
    session.flush()
    return codes


def disable_totp(session: Session, user: User) -> None:
    user.totp_secret_encrypted = None
    user.totp_last_step = None
    user.recovery_code_hashes = []
    session.flush()


def check_second_factor(session: Session, settings: Settings, user: User, code: str) -> bool:
    """A current TOTP code not used before, or an unused recovery code (then spent)."""
    if user.totp_secret_encrypted is None:
        return True
    code = code.strip()
    secret = secret_box(settings).decrypt(user.totp_secret_encrypted)
    step = _matching_step(secret, code, time.time())
    if step is not None:
        if user.totp_last_step is not None and step <= user.totp_last_step:
            return False
        user.totp_last_step = step
        session.flush()
        return True
    digest = _sha256(code.lower())
    if digest in user.recovery_code_hashes:
        user.recovery_code_hashes = [h for h in user.recovery_code_hashes if h != digest]
        session.flush()
        return True
    return False
