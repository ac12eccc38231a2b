from __future__ import annotations

import datetime as dt
import enum
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.core.database import Base


class Organization(Base):
    """A customer: the commercial identity that owns one tenant portal."""

    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    plan: Mapped[str] = mapped_column(String(32), default="free")
    # The signup form's one-time token: a double submit finds the first organization.
    signup_token: Mapped[str | None] = mapped_column(String(64), unique=True)


class User(Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    email_verified_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # TOTP seed, encrypted at rest (core.crypto); set once the user confirmed a first code.
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    # The time step of the last accepted code: a code is good once, even inside its window.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # sha256 hex of each unused recovery code.
    recovery_code_hashes: Mapped[list[str]] = mapped_column(JsonB, default=list)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)

    organization_id: Mapped[UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )


class TokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose, not a password


class AccountToken(Base):
    """A single-use, expiring token sent by mail; only its sha256 is stored."""

    __tablename__ = "account_tokens"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[TokenPurpose] = mapped_column(
        Enum(
            TokenPurpose,
            native_enum=False,
            length=32,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class SigningKey(Base):
    """A control-plane signing key (Ed25519). One is active; retired ones stay published."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JsonB)
    # The private JWK as JSON, encrypted at rest; dropped once the key is no longer published.
    private_jwk_encrypted: Mapped[str | None] = mapped_column(Text)
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), index=True)


class SsoConfiguration(Base):
    """A tenant's single sign-on: the live settings, the draft under test, the SCIM token.

    ``live`` and ``draft`` hold the same document (protocol, OIDC or SAML settings, role
    mapping); secrets inside them are encrypted. ``version`` bumps on every saved change.
    """

    __tablename__ = "sso_configurations"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    version: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(default=False)
    enforced: Mapped[bool] = mapped_column(default=False)
    live: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    draft: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    # The version at which the current draft was saved; tests are tied to it.
    draft_version: Mapped[int | None] = mapped_column(Integer)
    scim_token_sha256: Mapped[str | None] = mapped_column(String(64))
    scim_token_rotated_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class SsoTestState(enum.StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"


class SsoTest(Base):
    """One "test connection": a real login the runtime ran with a draft version."""

    __tablename__ = "sso_tests"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    draft_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[SsoTestState] = mapped_column(
        Enum(
            SsoTestState,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=SsoTestState.PENDING,
    )
    actor: Mapped[str] = mapped_column(String(255))
    result: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
