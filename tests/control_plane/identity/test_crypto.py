"""Encryption at rest: Fernet under a key derived from the secret key, with rotation."""

from __future__ import annotations

import pytest

from control_plane.core.crypto import DecryptionFailed, SecretBox

pytestmark = pytest.mark.sso


def test_a_secret_round_trips_and_is_not_stored_in_clear() -> None:
    box = SecretBox(b"current-secret-key-of-enough-length")
    token = box.encrypt("client-secret-value")
    assert "client-secret-value" not in token
    assert box.decrypt(token) == "client-secret-value"


def test_values_encrypted_under_an_old_key_still_decrypt_after_rotation() -> None:
    old = SecretBox(b"the-old-secret-key-of-enough-length")
    token = old.encrypt("client-secret-value")
    rotated = SecretBox(
        b"the-new-secret-key-of-enough-length", [b"the-old-secret-key-of-enough-length"]
    )
    assert rotated.decrypt(token) == "client-secret-value"


def test_rotate_reencrypts_under_the_current_key() -> None:
    old_key, new_key = (
        b"the-old-secret-key-of-enough-length",
        b"the-new-secret-key-of-enough-length",
    )
    token = SecretBox(old_key).encrypt("v")
    rewritten = SecretBox(new_key, [old_key]).rotate(token)
    assert SecretBox(new_key).decrypt(rewritten) == "v"


def test_a_value_under_an_unknown_key_is_refused_with_a_hint() -> None:
    token = SecretBox(b"some-other-secret-key-of-enough-len").encrypt("v")
    with pytest.raises(DecryptionFailed, match="BACKLOT_OLD_SECRET_KEYS"):
        SecretBox(b"the-new-secret-key-of-enough-length").decrypt(token)
