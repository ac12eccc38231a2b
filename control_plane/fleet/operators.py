"""Operator API tokens: issued once, kept as a SHA-256, checked on every admin call."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.errors import NotFound, ValidationFailed
from control_plane.fleet.models import OperatorToken, Scope

TOKEN_PREFIX = "blop_"  # noqa: S105 - a marker that lets secret scanners spot leaked tokens


@dataclass(frozen=True, slots=True)
class Operator:
    """Who is calling the admin API, and what they may do."""

    subject: str
    scopes: frozenset[str]
    token_id: str | None = None

    @property
    def actor(self) -> str:
        return f"operator:{self.subject}"


def _digest(token: str) -> str:
    # A random 256-bit token needs no slow hash: nothing about it can be guessed.
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    session: Session,
    *,
    name: str,
    operator: str,
    scopes: list[str],
    expires_in: dt.timedelta | None = None,
) -> tuple[OperatorToken, str]:
    """A new token; the plain token is returned once and never stored."""
    unknown = sorted(set(scopes) - {s.value for s in Scope})
    if unknown or not scopes:
        known = ", ".join(s.value for s in Scope)
        raise ValidationFailed({"scopes": f"scopes: choose from {known} (got {unknown or 'none'})"})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = OperatorToken(
        name=name,
        operator=operator,
        token_sha256=_digest(token),
        prefix=token[: len(TOKEN_PREFIX) + 6],
        scopes=sorted(set(scopes)),
        expires_at=dt.datetime.now(dt.UTC) + expires_in if expires_in else None,
    )
    session.add(row)
    session.flush()
    return row, token


def authenticate(session: Session, token: str) -> Operator | None:
    """The operator a token belongs to, or None if it is unknown, revoked or expired."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(select(OperatorToken).where(OperatorToken.token_sha256 == _digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= dt.datetime.now(dt.UTC):
        return None
    return Operator(subject=row.operator, scopes=frozenset(row.scopes), token_id=str(row.id))


def revoke(session: Session, token_id: str) -> OperatorToken:
    row = session.get(OperatorToken, token_id)
    if row is None:
        raise NotFound(f"no operator token {token_id}")
    row.revoked_at = row.revoked_at or dt.datetime.now(dt.UTC)
    session.flush()
    return row
