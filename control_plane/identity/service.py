"""Signing owners and admins in to the console."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.errors import DomainError
from control_plane.core.security import hash_password, needs_rehash, verify_password
from control_plane.identity.models import Membership, Organization, User

# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = hash_password("backlot-timing-equalizer")


class LoginFailed(DomainError):
    status_code = 401


def authenticate(session: Session, email: str, password: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active or not user.password_hash:
        verify_password(_DUMMY_HASH, password)
        raise LoginFailed("That email and password do not match an account.")
    if not verify_password(user.password_hash, password):
        raise LoginFailed("That email and password do not match an account.")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def organization_of(session: Session, user_id: UUID) -> tuple[Organization, Membership] | None:
    row = session.execute(
        select(Organization, Membership)
        .join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at)
        .limit(1)
    ).first()
    if row is None:
        return None
    return row[0], row[1]
