"""Encryption at rest for the secrets the control plane must read back (IdP client secrets,
signing keys, TOTP seeds).

Fernet tokens (AES-128-CBC + HMAC-SHA256) under a key derived with HKDF from
``BACKLOT_SECRET_KEY``. Rotating the secret: put the old one in ``BACKLOT_OLD_SECRET_KEYS``;
values encrypted under it still decrypt, and ``SecretBox.rotate`` re-encrypts them under the
new key. Nothing here knows which domain the secrets belong to.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from control_plane.core.settings import Settings

# Binds the derived key to this one use, so the same secret keys sessions and CSRF elsewhere
# without the two ever sharing key material.
_INFO = b"backlot/at-rest-encryption/v1"


class DecryptionFailed(Exception):
    """A stored value was encrypted under a key that is neither current nor listed as old."""


def derive_key(secret: bytes) -> bytes:
    """The Fernet key (urlsafe base64 of 32 bytes) for one secret."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
    return base64.urlsafe_b64encode(raw)


class SecretBox:
    """Encrypts under the current secret; decrypts under the current or any old one."""

    def __init__(self, current: bytes, old: Sequence[bytes] = ()) -> None:
        self._fernet = MultiFernet(
            [Fernet(derive_key(current)), *(Fernet(derive_key(k)) for k in old)]
        )

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise DecryptionFailed(
                "a stored secret cannot be decrypted: is its key missing from "
                "BACKLOT_OLD_SECRET_KEYS?"
            ) from None

    def rotate(self, token: str) -> str:
        """The same value, encrypted under the current secret."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise DecryptionFailed("a stored secret cannot be decrypted for rotation") from None


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(
        settings.encryption_secret,
        [key.get_secret_value().encode() for key in settings.old_secret_keys],
    )
