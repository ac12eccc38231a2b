"""Portal users, their groups and sessions, and what login leaves behind (used tickets, days)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenant_runtime.core.database import Base


class User(Base):
    """A person who may use this portal: created at first login (JIT) or by SCIM."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Lower-cased; the key SSO, handoff and SCIM agree on.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # SCIM's userName and externalId, as the identity provider sent them.
    user_name: Mapped[str | None] = mapped_column(String(320), unique=True, nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # How the user came to exist: "sso", "handoff" or "scim".
    source: Mapped[str] = mapped_column(String(16))
    # The SCIM resource as the identity provider last wrote it (attributes the portal does
    # not use are kept so they read back unchanged); never a password.
    scim_attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Group(Base):
    """A group pushed by SCIM; its display name is matched against the role mapping."""

    __tablename__ = "user_groups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(255), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    scim_attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GroupMembership(Base):
    __tablename__ = "user_group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("user_groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AuthSession(Base):
    """A signed-in browser: the cookie holds a random token, this row only its SHA-256."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index(None, "user_id"),)

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # "oidc", "saml" or "handoff"; OIDC sessions keep the ID token for RP-initiated logout.
    method: Mapped[str] = mapped_column(String(16))
    id_token: Mapped[str | None] = mapped_column(String(8192), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginAttempt(Base):
    """A login sent to an identity provider and not back yet (OIDC state, SAML request id)."""

    __tablename__ = "login_attempts"

    state: Mapped[str] = mapped_column(String(128), primary_key=True)
    protocol: Mapped[str] = mapped_column(String(8))
    nonce: Mapped[str | None] = mapped_column(String(128), nullable=True)
    code_verifier: Mapped[str | None] = mapped_column(String(128), nullable=True)
    saml_request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Set for a test of the draft configuration started from the console.
    sso_test_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    config_version: Mapped[int] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UsedHandoffTicket(Base):
    """A handoff ticket's `jti`, kept until the ticket would have expired anyway."""

    __tablename__ = "used_handoff_tickets"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LoginDay(Base):
    """A day on which a user signed in or used a session: active users are counted from it."""

    __tablename__ = "login_days"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
