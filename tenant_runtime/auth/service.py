"""Users, sessions and login days. Services flush; the request that owns the unit commits."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tenant_runtime.auth.errors import AuthError
from tenant_runtime.auth.models import AuthSession, LoginDay, User
from tenant_runtime.auth.principal import Principal, Role

logger = structlog.get_logger(__name__)

SESSION_COOKIE = "backlot_session"
# A session's last-seen time is written at most this often: most requests then only read.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionPolicy:
    tenant_id: str
    idle: timedelta
    absolute: timedelta


def principal_for(user: User) -> Principal:
    return Principal(
        kind="user",
        subject=user.id,
        email=user.email,
        name=user.name or None,
        role=user.role,  # type: ignore[arg-type]
    )


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email.strip().lower())).first()


def sign_in_user(
    session: Session, *, email: str, name: str | None, role: Role, source: str
) -> User:
    """Create the user on first login (JIT) or refresh name and role; refuse a deactivated one."""
    normalized = email.strip().lower()
    if not normalized or "@" not in normalized:
        raise AuthError(
            "Your identity provider did not send an email address for you; ask your "
            "administrator to release the email claim to this portal.",
            status_code=403,
            log_event="login.no_email",
        )
    now = utcnow()
    user = user_by_email(session, normalized)
    if user is None:
        user = User(
            id=str(uuid.uuid4()),
            email=normalized,
            name=name or "",
            role=role,
            active=True,
            source=source,
            created_at=now,
            updated_at=now,
        )
        session.add(user)
        logger.info("user.created_at_login", user_id=user.id, source=source, role=role)
    elif not user.active:
        raise AuthError(
            "Your account in this portal is deactivated; ask your administrator to restore it.",
            status_code=403,
            log_event="login.user_deactivated",
            user_id=user.id,
        )
    else:
        if name:
            user.name = name
        if user.role != role:
            logger.info("user.role_changed", user_id=user.id, old=user.role, new=role)
        user.role = role
        user.updated_at = now
    user.last_login_at = now
    session.flush()
    record_login_day(session, user.id, now.date())
    return user


def record_login_day(session: Session, user_id: str, day: date) -> None:
    if session.get(LoginDay, (user_id, day)) is None:
        session.add(LoginDay(user_id=user_id, day=day))
        session.flush()


def open_session(
    session: Session,
    user: User,
    policy: SessionPolicy,
    *,
    method: str,
    id_token: str | None = None,
) -> str:
    """A new session for `user`; returns the cookie value (the token is stored hashed)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        AuthSession(
            token_sha256=token_digest(token),
            user_id=user.id,
            method=method,
            id_token=id_token,
            created_at=now,
            last_seen_at=now,
            expires_at=now + policy.absolute,
        )
    )
    session.flush()
    logger.info("session.opened", user_id=user.id, method=method)
    # The tenant id in the cookie lets a cookie from another portal be named as such.
    return f"{policy.tenant_id}.{token}"


def _token_of(cookie: str, policy: SessionPolicy) -> str | None:
    tenant_id, _, token = cookie.partition(".")
    if not token:
        logger.warning("session.malformed_cookie")
        return None
    if tenant_id != policy.tenant_id:
        logger.warning("session.other_tenant_cookie", cookie_tenant_id=tenant_id[:64])
        return None
    return token


def resolve_session(session: Session, cookie: str, policy: SessionPolicy) -> User | None:
    """The active user of a live session, touching its last-seen time; None otherwise."""
    token = _token_of(cookie, policy)
    if token is None:
        return None
    row = session.get(AuthSession, token_digest(token))
    if row is None:
        return None
    now = utcnow()
    if as_utc(row.expires_at) <= now:
        logger.info("session.expired", user_id=row.user_id, reason="absolute")
        session.delete(row)
        session.flush()
        return None
    if as_utc(row.last_seen_at) + policy.idle <= now:
        logger.info("session.expired", user_id=row.user_id, reason="idle")
        session.delete(row)
        session.flush()
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        # Deactivation ends access at once: the user is read on every request.
        logger.info("session.refused_inactive_user", user_id=row.user_id)
        return None
    if now - as_utc(row.last_seen_at) >= LAST_SEEN_RESOLUTION:
        row.last_seen_at = now
        record_login_day(session, user.id, now.date())
        session.flush()
    return user


def end_session(session: Session, cookie: str, policy: SessionPolicy) -> AuthSession | None:
    """Delete the cookie's session; returns the row that was ended, if any."""
    token = _token_of(cookie, policy)
    if token is None:
        return None
    row = session.get(AuthSession, token_digest(token))
    if row is not None:
        session.delete(row)
        session.flush()
        logger.info("session.ended", user_id=row.user_id)
    return row


def end_sessions_of(session: Session, user_id: str) -> None:
    session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
    session.flush()
