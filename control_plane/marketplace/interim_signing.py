"""Entitlement signing until the control plane's stored, rotating signing keys are available.

The contract (``control_plane.identity.signing``: Ed25519 keys stored encrypted, rotation,
JWKS at ``/.well-known/jwks.json``) is what entitlements are signed with. Until that module
is present this one derives a single Ed25519 key from the control plane's secret key with
HKDF: nothing is stored, so nothing needs encrypting, and changing the secret rotates it.
It offers the same two calls, ``sign(...) -> compact JWS`` and ``jwks(...) -> dict``.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.jwk import OKPKey

from control_plane.core.settings import Settings

ALGORITHM = "EdDSA"


@cache
def _key(secret: bytes) -> OKPKey:
    seed = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"backlot entitlements ed25519"
    ).derive(secret)
    key = OKPKey.import_key(Ed25519PrivateKey.from_private_bytes(seed))
    key.ensure_kid()
    return key


def sign(settings: Settings, claims: dict[str, Any]) -> str:
    key = _key(settings.session_secret)
    with warnings.catch_warnings():
        # joserfc warns that RFC 9864 prefers "Ed25519"; the contract names EdDSA.
        warnings.simplefilter("ignore")
        return jwt.encode(
            {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[ALGORITHM]
        )


def jwks(settings: Settings) -> dict[str, Any]:
    public = _key(settings.session_secret).as_dict(private=False)
    return {"keys": [{**public, "alg": ALGORITHM, "use": "sig"}]}
