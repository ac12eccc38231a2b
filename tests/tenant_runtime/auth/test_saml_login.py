"""SAML login against a real pysaml2 IdP: JIT users, group roles, and every refusal."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from tenant_runtime.app import create_app
from tenant_runtime.auth.models import User
from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.migrate import migrate
from tests.support.dex import free_port
from tests.support.saml_idp import PostedResponse, SamlIdp, SamlUser
from tests.tenant_runtime.auth.conftest import OTHER_TENANT_ID, saml_section

pytestmark = pytest.mark.sso

Configure = Callable[[dict[str, Any] | None], None]
ADA = SamlUser(email="ada@example.com", name="Ada Lovelace", groups=("portal-admins",))
MALLORY = "mallory@example.com"


def _refusal(logs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(entry for entry in logs if entry["log_level"] == "warning")


def _trust_each_other(portal: TestClient[Litestar], idp: SamlIdp, configure: Configure) -> None:
    configure(saml_section(idp))
    idp.trust(portal.get("/auth/saml/metadata").text)


@pytest.fixture
def saml_portal(
    portal: TestClient[Litestar], saml_idp: SamlIdp, configure_sso: Configure
) -> TestClient[Litestar]:
    _trust_each_other(portal, saml_idp, configure_sso)
    saml_idp.login_as(ADA)
    return portal


def _to_idp(portal: TestClient[Litestar]) -> PostedResponse:
    """Start at the portal, follow it to the IdP over HTTP, read the form the IdP returns."""
    start = portal.get("/auth/sso/start", follow_redirects=False)
    assert start.status_code == 302, start.text
    page = httpx.get(start.headers["location"]).text
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page))
    action = re.search(r'action="([^"]+)"', page)
    assert action is not None
    return PostedResponse(action.group(1), fields["SAMLResponse"], fields["RelayState"])


def _post(portal: TestClient[Litestar], posted: PostedResponse, **changes: str) -> Any:
    data = {"SAMLResponse": posted.saml_response, "RelayState": posted.relay_state, **changes}
    return portal.post("/auth/saml/acs", data=data, follow_redirects=False)


def test_metadata_names_the_portal_and_its_acs(
    portal: TestClient[Litestar], runtime_settings: RuntimeSettings
) -> None:
    metadata = portal.get("/auth/saml/metadata").text
    assert f'Location="{runtime_settings.portal_url}/auth/saml/acs"' in metadata


def test_saml_login_signs_the_user_in(saml_portal: TestClient[Litestar]) -> None:
    response = _post(saml_portal, _to_idp(saml_portal))
    assert response.status_code == 302
    assert saml_portal.get("/auth/me").json()["email"] == ADA.email


def test_saml_login_creates_the_user_with_the_mapped_role(
    saml_portal: TestClient[Litestar], session: Session
) -> None:
    _post(saml_portal, _to_idp(saml_portal))
    user = session.scalars(select(User).where(User.email == ADA.email)).one()
    assert (user.name, user.role, user.source) == ("Ada Lovelace", "admin", "sso")


def test_an_unsigned_assertion_is_refused(
    saml_portal: TestClient[Litestar], saml_idp: SamlIdp
) -> None:
    saml_idp.sign_assertion = False
    with capture_logs() as logs:
        response = _post(saml_portal, _to_idp(saml_portal))
    refusal = _refusal(logs)
    assert (response.status_code, refusal["event"], refusal["error"]) == (
        401,
        "saml.response_refused",
        "SignatureError",
    )


def test_a_replayed_response_is_refused(saml_portal: TestClient[Litestar]) -> None:
    posted = _to_idp(saml_portal)
    _post(saml_portal, posted)
    saml_portal.cookies.clear()
    with capture_logs() as logs:
        response = _post(saml_portal, posted)
    assert (response.status_code, _refusal(logs)["event"]) == (401, "login.unknown_state")


def test_an_unsolicited_response_is_refused(saml_portal: TestClient[Litestar]) -> None:
    response = _post(saml_portal, _to_idp(saml_portal), RelayState="made-up")
    assert response.status_code == 401


# Signature wrapping: the signed assertion stays intact, an attacker's one is read instead.


def _decoded(posted: PostedResponse) -> str:
    return base64.b64decode(posted.saml_response).decode()


def _encoded(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def _assertion(xml: str) -> tuple[str, str]:
    """(the signed assertion element, its namespace prefix)."""
    match = re.search(r"<(\w+):Assertion\b.*?</\1:Assertion>", xml, re.S)
    assert match is not None
    return match.group(0), match.group(1)


def _evil_copy(assertion: str) -> str:
    """The assertion with the attacker's identity, a new ID and no signature."""
    evil = re.sub(r"<(\w+):Signature\b.*?</\1:Signature>", "", assertion, flags=re.S)
    evil = re.sub(r'\bID="[^"]+"', 'ID="id-evil-0001"', evil, count=1)
    return evil.replace(ADA.email, MALLORY)


def _wrapped_sibling(xml: str) -> str:
    """XSW: the attacker's assertion placed before the signed one."""
    assertion, _ = _assertion(xml)
    return xml.replace(assertion, _evil_copy(assertion) + assertion)


def _wrapped_inside(xml: str) -> str:
    """XSW: the attacker's assertion replaces the signed one, which hides inside it."""
    assertion, prefix = _assertion(xml)
    evil = _evil_copy(assertion)
    closing = f"</{prefix}:Assertion>"
    hidden = evil[: -len(closing)] + assertion + closing
    return xml.replace(assertion, hidden)


@pytest.mark.parametrize(
    ("wrap", "reason"),
    [(_wrapped_sibling, "InvalidAssertion"), (_wrapped_inside, "SignatureError")],
)
def test_signature_wrapping_is_refused(
    saml_portal: TestClient[Litestar], wrap: Callable[[str], str], reason: str
) -> None:
    posted = _to_idp(saml_portal)
    forged = _encoded(wrap(_decoded(posted)))
    with capture_logs() as logs:
        response = _post(saml_portal, posted, SAMLResponse=forged)
    refusal = _refusal(logs)
    assert (response.status_code, refusal["event"], refusal["error"]) == (
        401,
        "saml.response_refused",
        reason,
    )


def test_the_wrapping_forgery_really_names_the_attacker(saml_portal: TestClient[Litestar]) -> None:
    forged = _wrapped_sibling(_decoded(_to_idp(saml_portal)))
    assert forged.index(MALLORY) < forged.index(ADA.email)


def test_a_tampered_signed_assertion_is_refused(saml_portal: TestClient[Litestar]) -> None:
    posted = _to_idp(saml_portal)
    tampered = _encoded(_decoded(posted).replace(ADA.email, MALLORY))
    with capture_logs() as logs:
        response = _post(saml_portal, posted, SAMLResponse=tampered)
    assert (response.status_code, _refusal(logs)["reason"]) == (401, "Failed to verify signature")


@pytest.fixture
def other_portal(
    tmp_path: Path, runtime_settings: RuntimeSettings, saml_idp: SamlIdp
) -> Iterator[TestClient[Litestar]]:
    settings = runtime_settings.model_copy(
        update={
            "tenant_id": OTHER_TENANT_ID,
            "database_url": f"sqlite:///{tmp_path / 'other' / 'runtime.db'}",
            "data_dir": tmp_path / "other",
            "public_url": f"http://127.0.0.1:{free_port()}",
        }
    )
    migrate(settings)
    app: Litestar = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        _trust_each_other(client, saml_idp, app.state.sso_state.set_sso)
        yield client


def test_a_response_for_another_tenant_is_refused(
    saml_portal: TestClient[Litestar], other_portal: TestClient[Litestar]
) -> None:
    for_tenant_a = _to_idp(saml_portal)
    at_tenant_b = _to_idp(other_portal)
    with capture_logs() as logs:
        response = _post(other_portal, at_tenant_b, SAMLResponse=for_tenant_a.saml_response)
    assert (response.status_code, _refusal(logs)["error"]) == (401, "UnsolicitedResponse")
