"""The control plane's signing keys: Ed25519, kept in the database, published as a JWKS.

One key is active and signs; ``rotate`` retires it and makes a new one. A retired key stays
in the JWKS for ``signing_key_retention_seconds`` so that every token it signed still
verifies until it expires; after that its private half is erased and it leaves the JWKS.
Tokens are compact JWS with ``alg: EdDSA`` (the cross-plane contract) and the key's ``kid``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import warnings
from typing import Any

from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet, OKPKey
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from control_plane.core.crypto import secret_box
from control_plane.core.settings import Settings, load_settings
from control_plane.identity.models import SigningKey

ALGORITHM = "EdDSA"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _encode(header: dict[str, Any], claims: dict[str, Any], key: OKPKey) -> str:
    # joserfc flags "EdDSA" in favour of RFC 9864's "Ed25519"; the runtimes verify "EdDSA".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode(header, claims, key, algorithms=[ALGORITHM])


def create_key(session: Session, settings: Settings) -> SigningKey:
    """A new active key; the caller retires the previous one (see ``rotate``)."""
    kid = f"cp-{_now():%Y%m%d}-{secrets.token_hex(4)}"
    key = OKPKey.generate_key("Ed25519", parameters={"kid": kid, "use": "sig", "alg": ALGORITHM})
    row = SigningKey(
        kid=kid,
        public_jwk=dict(key.as_dict(private=False)),
        private_jwk_encrypted=secret_box(settings).encrypt(json.dumps(key.as_dict(private=True))),
    )
    session.add(row)
    session.flush()
    return row


def active_key(session: Session, settings: Settings) -> SigningKey:
    """The key that signs now, made on first use."""
    row = session.scalar(
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    )
    return row if row is not None else create_key(session, settings)


def rotate(session: Session, settings: Settings) -> SigningKey:
    """Retire the active key (still published for the retention period) and make a new one."""
    now = _now()
    for row in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        row.retired_at = now
    session.flush()
    expire_retired(session, settings)
    return create_key(session, settings)


def expire_retired(session: Session, settings: Settings) -> None:
    """Erase the private half of keys retired longer ago than the retention period."""
    cutoff = _now() - dt.timedelta(seconds=settings.signing_key_retention_seconds)
    for row in session.scalars(
        select(SigningKey).where(
            SigningKey.retired_at < cutoff, SigningKey.private_jwk_encrypted.is_not(None)
        )
    ):
        row.private_jwk_encrypted = None
    session.flush()


def sign(session: Session, claims: dict[str, Any], *, settings: Settings | None = None) -> str:
    """``claims`` as a compact JWS signed with the active key (header ``kid``).

    ``settings`` holds the key that decrypts the private key; the environment's by default.
    """
    settings = settings or load_settings()
    row = active_key(session, settings)
    assert row.private_jwk_encrypted is not None, "an active key always has its private half"
    key = OKPKey.import_key(json.loads(secret_box(settings).decrypt(row.private_jwk_encrypted)))
    return _encode({"alg": ALGORITHM, "kid": row.kid, "typ": "JWT"}, claims, key)


def jwks(session: Session, *, settings: Settings | None = None) -> dict[str, Any]:
    """The public keys that verify tokens: the active one and those retired recently."""
    settings = settings or load_settings()
    cutoff = _now() - dt.timedelta(seconds=settings.signing_key_retention_seconds)
    rows = session.scalars(
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at >= cutoff))
        .order_by(SigningKey.created_at.desc())
    )
    return {"keys": [dict(row.public_jwk) for row in rows]}


def key_set(document: dict[str, Any]) -> KeySet:
    """A JWKS document as joserfc keys, to verify with."""
    return KeySet.import_key_set(document)  # type: ignore[arg-type]
