"""Rotating the control plane's secrets: its signing key, and the key secrets are stored under.

After ``BACKLOT_SECRET_KEY`` changes (the old value listed in ``BACKLOT_OLD_SECRET_KEYS``),
``reencrypt_secrets`` rewrites every stored secret under the new key; then the old key can
be dropped from the list.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.crypto import SecretBox, secret_box
from control_plane.core.settings import Settings
from control_plane.identity.models import SigningKey, SsoConfiguration, User


def _reencrypted_document(box: SecretBox, document: dict[str, Any] | None) -> dict[str, Any] | None:
    if not document or not document.get("oidc"):
        return document
    oidc = dict(document["oidc"])
    oidc["client_secret_encrypted"] = box.rotate(oidc["client_secret_encrypted"])
    # A new dict, so the JSON column sees the change.
    return {**document, "oidc": oidc}


def reencrypt_secrets(session: Session, settings: Settings) -> int:
    """Rewrite every stored secret under the current secret key; how many were rewritten."""
    box = secret_box(settings)
    count = 0
    for key in session.scalars(
        select(SigningKey).where(SigningKey.private_jwk_encrypted.is_not(None))
    ):
        assert key.private_jwk_encrypted is not None
        key.private_jwk_encrypted = box.rotate(key.private_jwk_encrypted)
        count += 1
    for config in session.scalars(select(SsoConfiguration)):
        for attribute in ("live", "draft"):
            document = getattr(config, attribute)
            if document and document.get("oidc"):
                setattr(config, attribute, _reencrypted_document(box, document))
                count += 1
    for user in session.scalars(select(User).where(User.totp_secret_encrypted.is_not(None))):
        assert user.totp_secret_encrypted is not None
        user.totp_secret_encrypted = box.rotate(user.totp_secret_encrypted)
        count += 1
    session.flush()
    return count
