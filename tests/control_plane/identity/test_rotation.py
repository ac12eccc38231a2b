"""Rotating the secret key: every stored secret is rewritten under the new one."""

from __future__ import annotations

import pyotp
import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy.orm import Session

from control_plane.cli import main
from control_plane.core.crypto import SecretBox, secret_box
from control_plane.core.settings import Settings
from control_plane.identity import accounts, signing
from control_plane.identity.rotation import reencrypt_secrets
from tests.control_plane.identity.conftest import enforce_sso, running_portal

pytestmark = [pytest.mark.sso, pytest.mark.integration]

NEW_KEY = "a-brand-new-secret-key-of-enough-length"


def test_reencryption_moves_every_secret_to_the_new_key(
    db_session: Session, settings: Settings
) -> None:
    user, _, tenant = running_portal(db_session)
    config = enforce_sso(db_session, tenant)
    oidc = {"issuer": "https://idp.example", "client_id": "c", "scopes": ["openid"]}
    config.live = {
        **(config.live or {}),
        "oidc": {**oidc, "client_secret_encrypted": secret_box(settings).encrypt("idp-secret")},
    }
    secret = accounts.new_totp_secret()
    accounts.enable_totp(db_session, settings, user, secret, pyotp.TOTP(secret).now())
    key = signing.active_key(db_session, settings)
    rotated = settings.model_copy(
        update={"secret_key": SecretStr(NEW_KEY), "old_secret_keys": [settings.secret_key]}
    )
    assert reencrypt_secrets(db_session, rotated) == 3
    only_new = SecretBox(NEW_KEY.encode())
    assert user.totp_secret_encrypted is not None
    assert key.private_jwk_encrypted is not None
    assert only_new.decrypt(user.totp_secret_encrypted) == secret
    assert '"d"' in only_new.decrypt(key.private_jwk_encrypted)
    assert config.live is not None
    assert only_new.decrypt(config.live["oidc"]["client_secret_encrypted"]) == "idp-secret"


def test_the_rotate_signing_key_command_signs_with_a_new_key(
    db_session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = signing.active_key(db_session, settings).kid
    db_session.commit()
    monkeypatch.setenv("BACKLOT_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("BACKLOT_SECRET_KEY", settings.secret_key.get_secret_value())

    result = CliRunner().invoke(main, ["rotate-signing-key"])

    db_session.expire_all()
    after = signing.active_key(db_session, settings).kid
    assert (result.exit_code, result.output.strip(), after != before) == (
        0,
        f"signing with {after}",
        True,
    )
