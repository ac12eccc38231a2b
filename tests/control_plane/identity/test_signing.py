"""Control-plane signing keys, the JWKS and the portal handoff ticket (contract §2)."""

from __future__ import annotations

import datetime as dt
import warnings
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, SecurityWarning
from joserfc.jwk import KeySet, OKPKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.settings import Settings
from control_plane.identity import signing
from control_plane.identity.models import Role, SigningKey
from control_plane.tenants.models import TenantEvent
from tests.control_plane.identity.conftest import (
    RUNTIME_URL,
    Client,
    Console,
    enforce_sso,
    log_in,
    running_portal,
)

pytestmark = [pytest.mark.sso, pytest.mark.integration]


def _decode(token: str, jwks: dict[str, object]) -> jwt.Token:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["EdDSA"])  # type: ignore[arg-type]


def test_a_token_verifies_against_the_published_jwks(
    db_session: Session, settings: Settings, client: Client
) -> None:
    token = signing.sign(db_session, {"sub": "x"}, settings=settings)
    db_session.commit()
    published = client.get("/.well-known/jwks.json").json()
    decoded = _decode(token, published)
    assert (decoded.header["alg"], decoded.header["kid"], decoded.claims) == (
        "EdDSA",
        published["keys"][0]["kid"],
        {"sub": "x"},
    )


def test_the_jwks_publishes_no_private_half(db_session: Session, settings: Settings) -> None:
    signing.sign(db_session, {"sub": "x"}, settings=settings)
    assert all("d" not in key for key in signing.jwks(db_session, settings=settings)["keys"])


def test_the_private_key_is_encrypted_at_rest(db_session: Session, settings: Settings) -> None:
    key = signing.active_key(db_session, settings)
    assert key.private_jwk_encrypted is not None
    assert '"d"' not in key.private_jwk_encrypted
    assert key.public_jwk["kty"] == "OKP"


def test_rotation_keeps_the_retired_key_published_and_signs_with_the_new_one(
    db_session: Session, settings: Settings
) -> None:
    before = signing.sign(db_session, {"n": 1}, settings=settings)
    new_key = signing.rotate(db_session, settings)
    after = signing.sign(db_session, {"n": 2}, settings=settings)
    published = signing.jwks(db_session, settings=settings)
    assert _decode(before, published).claims == {"n": 1}
    assert _decode(after, published).header["kid"] == new_key.kid


def test_a_key_retired_beyond_the_retention_leaves_the_jwks(
    db_session: Session, settings: Settings
) -> None:
    token = signing.sign(db_session, {"n": 1}, settings=settings)
    signing.rotate(db_session, settings)
    old = db_session.scalars(select(SigningKey).where(SigningKey.retired_at.is_not(None))).one()
    old.retired_at = dt.datetime.now(dt.UTC) - dt.timedelta(
        seconds=settings.signing_key_retention_seconds + 1
    )
    signing.expire_retired(db_session, settings)
    with pytest.raises(InvalidKeyIdError, match=old.kid):
        _decode(token, signing.jwks(db_session, settings=settings))
    assert old.private_jwk_encrypted is None


def test_a_token_signed_by_a_key_not_in_the_jwks_does_not_verify(
    db_session: Session, settings: Settings
) -> None:
    published = signing.active_key(db_session, settings)
    stranger = OKPKey.generate_key("Ed25519")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        forged = jwt.encode(
            {"alg": "EdDSA", "kid": published.kid}, {"sub": "x"}, stranger, algorithms=["EdDSA"]
        )
    with pytest.raises(BadSignatureError):
        _decode(forged, signing.jwks(db_session, settings=settings))


def _ticket(location: str) -> str:
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{RUNTIME_URL}/auth/handoff"
    return parse_qs(parts.query)["ticket"][0]


def test_the_portal_link_hands_off_with_a_signed_ticket(
    console: Console, settings: Settings
) -> None:
    response = console.client.get("/console/portal", follow_redirects=False)
    assert response.status_code == 302
    claims = _decode(
        _ticket(response.headers["location"]), console.client.get("/.well-known/jwks.json").json()
    ).claims
    assert {k: claims[k] for k in ("iss", "aud", "sub", "email", "role")} == {
        "iss": settings.resolved_public_url,
        "aud": f"backlot-runtime:{console.tenant.id}",
        "sub": str(console.user.id),
        "email": console.user.email,
        "role": "admin",
    }
    assert claims["exp"] - claims["iat"] == 60
    assert "break_glass" not in claims


def test_each_ticket_has_its_own_jti(console: Console) -> None:
    jwks = console.client.get("/.well-known/jwks.json").json()
    jtis = {
        _decode(
            _ticket(
                console.client.get("/console/portal", follow_redirects=False).headers["location"]
            ),
            jwks,
        ).claims["jti"]
        for _ in range(3)
    }
    assert len(jtis) == 3


def test_a_member_enters_the_portal_as_member(client: Client, db_session: Session) -> None:
    user, _, _ = running_portal(db_session, role=Role.MEMBER)
    db_session.commit()
    log_in(client, user.email)
    location = client.get("/console/portal", follow_redirects=False).headers["location"]
    claims = _decode(_ticket(location), client.get("/.well-known/jwks.json").json()).claims
    assert claims["role"] == "member"


def test_enforced_sso_sends_a_member_to_the_portal_sso_login(
    client: Client, db_session: Session
) -> None:
    user, _, tenant = running_portal(db_session, role=Role.MEMBER)
    enforce_sso(db_session, tenant)
    db_session.commit()
    log_in(client, user.email)
    response = client.get("/console/portal", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (
        302,
        f"{RUNTIME_URL}/auth/login",
    )


def test_enforced_sso_lets_an_owner_in_by_break_glass_and_records_it(
    console: Console, db_session: Session
) -> None:
    enforce_sso(db_session, console.tenant)
    db_session.commit()
    location = console.client.get("/console/portal", follow_redirects=False).headers["location"]
    claims = _decode(_ticket(location), console.client.get("/.well-known/jwks.json").json()).claims
    assert claims["break_glass"] is True
    reasons = db_session.scalars(
        select(TenantEvent.reason).where(TenantEvent.tenant_id == console.tenant.id)
    ).all()
    assert "BreakGlassPortal" in reasons


def test_the_portal_link_waits_for_a_running_portal(console: Console, db_session: Session) -> None:
    console.tenant.runtime_url = None
    db_session.commit()
    response = console.client.get("/console/portal", follow_redirects=False)
    assert response.status_code == 409
    assert "Your portal is not running" in response.text
