"""SSO configuration: validated against the real provider, encrypted at rest, gated by a test."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.audit import service as audit_log
from control_plane.core.settings import Settings
from control_plane.identity.models import SsoConfiguration, SsoTest, SsoTestState
from control_plane.runtime_link.service import runtime_token
from control_plane.tenants.models import TenantEvent
from tests.control_plane.identity.conftest import DEX_CLIENT, RUNTIME_URL, Console
from tests.control_plane.identity.saml_idp import ENTITY_ID, SSO_URL, idp_metadata
from tests.support.dex import DexServer, free_port

pytestmark = [pytest.mark.sso, pytest.mark.integration]


def oidc_settings(dex: DexServer, **overrides: Any) -> dict[str, Any]:
    oidc = {
        "issuer": dex.issuer,
        "client_id": DEX_CLIENT.id,
        "client_secret": DEX_CLIENT.secret,
        "scopes": ["openid", "email", "profile", "groups"],
        "claims": {"email": "email", "name": "name", "groups": "groups"},
    }
    oidc.update(overrides)
    return {
        "protocol": "oidc",
        "oidc": oidc,
        "role_mapping": [{"group": "platform-team", "role": "admin"}],
        "default_role": "member",
    }


def saml_settings(**overrides: Any) -> dict[str, Any]:
    saml = {
        "metadata_xml": idp_metadata(),
        "attributes": {"email": "mail", "name": "displayName", "groups": "memberOf"},
        "want_assertions_signed": True,
    }
    saml.update(overrides)
    return {"protocol": "saml", "saml": saml, "role_mapping": [], "default_role": "viewer"}


def _config(session: Session, console: Console) -> SsoConfiguration | None:
    session.expire_all()
    return session.scalar(
        select(SsoConfiguration).where(SsoConfiguration.tenant_id == console.tenant.id)
    )


def _sso_events(session: Session, console: Console) -> list[str]:
    return list(
        session.scalars(
            select(TenantEvent.reason)
            .where(TenantEvent.tenant_id == console.tenant.id, TenantEvent.reason.like("Sso%"))
            .order_by(TenantEvent.created_at)
        )
    )


def _runtime_headers(settings: Settings, console: Console) -> dict[str, str]:
    return {
        "authorization": f"Bearer {runtime_token(settings, console.tenant.id)}",
        "x-backlot-tenant": str(console.tenant.id),
    }


def _report(
    console: Console, settings: Settings, test_id: str, ok: bool, error: str | None = None
) -> Any:
    return console.client.post(
        f"/internal/v1/runtime/sso-tests/{test_id}",
        json={
            "ok": ok,
            "protocol": "oidc",
            "claims": {"email": "admin@example.com"},
            "email": "admin@example.com" if ok else None,
            "groups": ["platform-team"] if ok else [],
            "role": "admin" if ok else None,
            "error": error,
        },
        headers=_runtime_headers(settings, console),
    )


# --- OIDC, against Dex


def test_an_oidc_draft_is_saved_after_discovery(console: Console, dex: DexServer) -> None:
    response = console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["draft_version"], body["enabled"], body["can_enable"]) == (1, False, False)
    assert body["draft"]["oidc"]["endpoints"]["token_endpoint"] == f"{dex.issuer}/token"


def test_the_client_secret_is_encrypted_at_rest_and_never_shown(
    console: Console, dex: DexServer, db_session: Session
) -> None:
    body = console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex)).json()
    assert body["draft"]["oidc"]["client_secret_set"] is True
    assert DEX_CLIENT.secret not in str(body)
    config = _config(db_session, console)
    assert config is not None
    assert config.draft is not None
    assert DEX_CLIENT.secret not in str(config.draft)


def test_an_edit_without_a_secret_keeps_the_saved_one(
    console: Console, dex: DexServer, settings: Settings
) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    edited = console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex, client_secret=""))
    assert edited.status_code == 200, edited.text
    document = console.client.get(
        "/internal/v1/runtime/config", headers=_runtime_headers(settings, console)
    ).json()
    assert document["sso"]["draft"]["oidc"]["client_secret"] == DEX_CLIENT.secret


def test_a_wrong_issuer_is_refused_with_the_right_one_named(
    console: Console, dex: DexServer, db_session: Session
) -> None:
    wrong = dex.issuer.replace("127.0.0.1", "localhost")
    response = console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex, issuer=wrong))
    assert response.status_code == 422
    assert f"enter exactly '{dex.issuer}'" in response.json()["detail"]
    assert _config(db_session, console) is None, "nothing is saved"


def test_an_unreachable_discovery_is_refused(console: Console, db_session: Session) -> None:
    issuer = f"http://127.0.0.1:{free_port()}/nothing-here"
    response = console.api(
        "PUT",
        "/api/v1/tenant/sso",
        {"protocol": "oidc", "oidc": {"issuer": issuer, "client_id": "x", "client_secret": "y"}},
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"Could not reach {issuer}/.well-known/openid-configuration (ConnectError); check the URL."
    )
    assert _config(db_session, console) is None


def test_a_discovery_that_is_not_found_is_refused(console: Console, dex: DexServer) -> None:
    response = console.api(
        "PUT", "/api/v1/tenant/sso", oidc_settings(dex, issuer=f"{dex.issuer}/elsewhere")
    )
    assert response.status_code == 422
    assert "answered HTTP 404" in response.json()["detail"]


def test_scopes_without_openid_are_refused(console: Console, dex: DexServer) -> None:
    response = console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex, scopes=["email"]))
    assert (response.status_code, response.json()["detail"]) == (
        422,
        "The scopes must include openid.",
    )


def test_an_unknown_role_is_refused_by_the_schema(console: Console, dex: DexServer) -> None:
    body = oidc_settings(dex)
    body["default_role"] = "superuser"
    assert console.api("PUT", "/api/v1/tenant/sso", body).status_code == 400


# --- SAML


def test_saml_metadata_is_parsed_for_the_idp(console: Console) -> None:
    response = console.api("PUT", "/api/v1/tenant/sso", saml_settings())
    assert response.status_code == 200, response.text
    saml = response.json()["draft"]["saml"]
    assert (saml["entity_id"], saml["sso_url"]) == (ENTITY_ID, SSO_URL)


@pytest.fixture
def metadata_url() -> Iterator[str]:
    """IdP metadata served over real HTTP on loopback."""
    body = idp_metadata().encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/samlmetadata+xml")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/saml/metadata"
    server.shutdown()
    thread.join()


def test_saml_metadata_is_fetched_from_a_url(console: Console, metadata_url: str) -> None:
    response = console.api(
        "PUT", "/api/v1/tenant/sso", saml_settings(metadata_xml="", metadata_url=metadata_url)
    )
    assert response.status_code == 200, response.text
    assert response.json()["draft"]["saml"]["metadata_url"] == metadata_url


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<md:EntityDescriptor", "The IdP metadata is not valid SAML 2.0 metadata XML."),
        ("", "Give the IdP metadata: a URL or the XML file."),
        (
            idp_metadata(with_certificate=False),
            "The IdP metadata has no signing certificate, so no assertion could be verified.",
        ),
        (
            idp_metadata(with_sso=False),
            "The IdP offers no single sign-on service over HTTP-Redirect or POST.",
        ),
    ],
    ids=["broken-xml", "empty", "no-certificate", "no-sso-service"],
)
def test_bad_saml_metadata_is_refused(
    console: Console, db_session: Session, xml: str, message: str
) -> None:
    response = console.api("PUT", "/api/v1/tenant/sso", saml_settings(metadata_xml=xml))
    assert (response.status_code, response.json()["detail"]) == (422, message)
    assert _config(db_session, console) is None


def test_an_entity_id_not_in_the_metadata_is_refused(console: Console) -> None:
    response = console.api(
        "PUT", "/api/v1/tenant/sso", saml_settings(entity_id="https://other.example/idp")
    )
    assert response.status_code == 422
    assert "has no IdP 'https://other.example/idp'" in response.json()["detail"]


def test_unsigned_assertions_are_refused(console: Console, db_session: Session) -> None:
    response = console.api("PUT", "/api/v1/tenant/sso", saml_settings(want_assertions_signed=False))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("Backlot accepts only signed assertions")
    assert _config(db_session, console) is None


# --- test connection and enabling


def test_enabling_without_a_test_is_refused(console: Console, dex: DexServer) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    response = console.api("POST", "/api/v1/tenant/sso/enable")
    assert response.status_code == 409
    assert "Test connection" in response.json()["detail"]


def test_a_test_redirects_to_the_runtime_with_an_sso_test_ticket(
    console: Console, dex: DexServer
) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    started = console.api("POST", "/api/v1/tenant/sso/tests")
    assert started.status_code == 201, started.text
    url = urlsplit(started.json()["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{RUNTIME_URL}/auth/sso/test"
    from tests.control_plane.identity.test_signing import _decode  # noqa: PLC0415

    claims = _decode(
        parse_qs(url.query)["ticket"][0], console.client.get("/.well-known/jwks.json").json()
    ).claims
    assert (claims["sso_test"], claims["role"], claims["aud"]) == (
        started.json()["test"]["id"],
        "admin",
        f"backlot-runtime:{console.tenant.id}",
    )


def test_a_passed_test_of_the_current_draft_allows_enabling(
    console: Console, dex: DexServer, settings: Settings, db_session: Session
) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    test_id = console.api("POST", "/api/v1/tenant/sso/tests").json()["test"]["id"]
    assert _report(console, settings, test_id, ok=True).status_code == 202
    assert console.api("GET", "/api/v1/tenant/sso").json()["can_enable"] is True
    enabled = console.api("POST", "/api/v1/tenant/sso/enable")
    assert enabled.status_code == 200, enabled.text
    assert (
        enabled.json()["enabled"],
        enabled.json()["draft"],
        enabled.json()["live"]["protocol"],
    ) == (
        True,
        None,
        "oidc",
    )
    assert _sso_events(db_session, console) == [
        "SsoDraftSaved",
        "SsoTestStarted",
        "SsoTestPassed",
        "SsoEnabled",
    ]


def test_every_sso_change_is_in_the_tenants_audit_log(
    console: Console, dex: DexServer, settings: Settings, db_session: Session
) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    test_id = console.api("POST", "/api/v1/tenant/sso/tests").json()["test"]["id"]
    _report(console, settings, test_id, ok=True)
    console.api("POST", "/api/v1/tenant/sso/enable")

    logged = audit_log.entries(db_session, tenant_id=console.tenant.id)

    assert [entry.action for entry in reversed(logged) if entry.action.startswith("identity.")] == [
        "identity.sso_draft_saved",
        "identity.sso_test_started",
        "identity.sso_test_passed",
        "identity.sso_enabled",
    ]


def test_a_failed_test_keeps_enabling_refused(
    console: Console, dex: DexServer, settings: Settings
) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    test_id = console.api("POST", "/api/v1/tenant/sso/tests").json()["test"]["id"]
    _report(console, settings, test_id, ok=False, error="the ID token's audience did not match")
    test = console.api("GET", f"/api/v1/tenant/sso/tests/{test_id}").json()
    assert (test["state"], test["error"]) == ("failed", "the ID token's audience did not match")
    assert console.api("POST", "/api/v1/tenant/sso/enable").status_code == 409


def test_a_test_of_an_older_draft_does_not_allow_enabling(
    console: Console, dex: DexServer, settings: Settings
) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    test_id = console.api("POST", "/api/v1/tenant/sso/tests").json()["test"]["id"]
    _report(console, settings, test_id, ok=True)
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex, scopes=["openid", "email"]))
    assert console.api("POST", "/api/v1/tenant/sso/enable").status_code == 409


def test_a_result_is_accepted_once(
    console: Console, dex: DexServer, settings: Settings, db_session: Session
) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    test_id = console.api("POST", "/api/v1/tenant/sso/tests").json()["test"]["id"]
    _report(console, settings, test_id, ok=True)
    again = _report(console, settings, test_id, ok=False, error="late")
    assert again.status_code == 409
    db_session.expire_all()
    assert db_session.scalars(select(SsoTest.state)).one() == SsoTestState.PASSED


def test_a_runtime_cannot_report_another_tenants_test(
    console: Console, dex: DexServer, settings: Settings, db_session: Session
) -> None:
    from tests.control_plane.identity.conftest import running_portal  # noqa: PLC0415

    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    test_id = console.api("POST", "/api/v1/tenant/sso/tests").json()["test"]["id"]
    _, _, other = running_portal(db_session)
    db_session.commit()
    response = console.client.post(
        f"/internal/v1/runtime/sso-tests/{test_id}",
        json={"ok": True, "protocol": "oidc"},
        headers={
            "authorization": f"Bearer {runtime_token(settings, other.id)}",
            "x-backlot-tenant": str(other.id),
        },
    )
    assert response.status_code == 404


def test_testing_needs_a_draft(console: Console) -> None:
    response = console.api("POST", "/api/v1/tenant/sso/tests")
    assert (response.status_code, response.json()["detail"]) == (
        409,
        "Save a configuration first: there is no draft to test.",
    )


# --- what the runtime reads


def test_the_runtime_section_carries_the_live_config_and_the_draft(
    console: Console, dex: DexServer, settings: Settings
) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    test_id = console.api("POST", "/api/v1/tenant/sso/tests").json()["test"]["id"]
    _report(console, settings, test_id, ok=True)
    console.api("POST", "/api/v1/tenant/sso/enable")
    console.api("PUT", "/api/v1/tenant/sso/enforcement", {"enforced": True})
    section = console.client.get(
        "/internal/v1/runtime/config", headers=_runtime_headers(settings, console)
    ).json()["sso"]
    assert section == {
        "version": 3,
        "enabled": True,
        "enforced": True,
        "protocol": "oidc",
        "oidc": {
            "issuer": dex.issuer,
            "client_id": DEX_CLIENT.id,
            "client_secret": DEX_CLIENT.secret,
            "scopes": ["openid", "email", "profile", "groups"],
            "claims": {"email": "email", "name": "name", "groups": "groups"},
        },
        "saml": None,
        "role_mapping": [{"group": "platform-team", "role": "admin"}],
        "default_role": "member",
        "scim_token_sha256": None,
        "draft": None,
    }


def test_no_section_before_any_configuration(console: Console, settings: Settings) -> None:
    document = console.client.get(
        "/internal/v1/runtime/config", headers=_runtime_headers(settings, console)
    ).json()
    assert document["sso"] is None


def test_enforcing_needs_sso_enabled(console: Console) -> None:
    response = console.api("PUT", "/api/v1/tenant/sso/enforcement", {"enforced": True})
    assert (response.status_code, response.json()["detail"]) == (
        409,
        "Enable SSO before enforcing it.",
    )


def test_the_scim_token_is_shown_once_and_kept_as_its_sha256(
    console: Console, settings: Settings, db_session: Session
) -> None:
    token = console.api("POST", "/api/v1/tenant/sso/scim-token").json()["token"]
    config = _config(db_session, console)
    assert config is not None
    assert config.scim_token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(console.api("GET", "/api/v1/tenant/sso").json())
    section = console.client.get(
        "/internal/v1/runtime/config", headers=_runtime_headers(settings, console)
    ).json()["sso"]
    assert section["scim_token_sha256"] == config.scim_token_sha256


def test_rotating_the_scim_token_replaces_it(console: Console, db_session: Session) -> None:
    first = console.api("POST", "/api/v1/tenant/sso/scim-token").json()["token"]
    second = console.api("POST", "/api/v1/tenant/sso/scim-token").json()["token"]
    config = _config(db_session, console)
    assert config is not None
    assert first != second
    assert config.scim_token_sha256 == hashlib.sha256(second.encode()).hexdigest()


def test_a_member_cannot_see_or_change_sso(client: Any, db_session: Session) -> None:
    from control_plane.identity.models import Role  # noqa: PLC0415
    from tests.control_plane.identity.conftest import log_in, running_portal  # noqa: PLC0415

    user, _, _ = running_portal(db_session, role=Role.MEMBER)
    db_session.commit()
    log_in(client, user.email)
    assert client.get("/api/v1/tenant/sso").status_code == 403


# --- the console page


def test_the_console_form_takes_an_uploaded_metadata_file(
    console: Console, db_session: Session
) -> None:
    response = console.client.post(
        "/console/sso",
        data={
            "_csrf_token": console.csrf,
            "protocol": "saml",
            "attr_email": "mail",
            "attr_name": "displayName",
            "attr_groups": "memberOf",
            "want_assertions_signed": "on",
            "role_mapping": "platform-team = admin\n\ndevelopers = member",
            "default_role": "viewer",
        },
        files={"metadata_file": ("idp.xml", idp_metadata().encode(), "text/xml")},
        follow_redirects=False,
    )
    assert (response.status_code, response.headers["location"]) == (303, "/console/sso")
    config = _config(db_session, console)
    assert config is not None
    assert config.draft is not None
    assert (config.draft["saml"]["entity_id"], config.draft["role_mapping"]) == (
        ENTITY_ID,
        [
            {"group": "platform-team", "role": "admin"},
            {"group": "developers", "role": "member"},
        ],
    )


def test_the_console_form_shows_what_is_wrong_and_keeps_the_input(
    console: Console, db_session: Session
) -> None:
    issuer = f"http://127.0.0.1:{free_port()}/idp"
    response = console.client.post(
        "/console/sso",
        data={
            "_csrf_token": console.csrf,
            "protocol": "oidc",
            "issuer": issuer,
            "client_id": "portal",
            "client_secret": "never-echoed-secret",
            "scopes": "openid email",
        },
        files={"metadata_file": ("", b"", "application/octet-stream")},
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert f"Could not reach {issuer}/.well-known/openid-configuration" in response.text
    assert f'value="{issuer}"' in response.text
    assert "never-echoed-secret" not in response.text
    assert _config(db_session, console) is None


def test_the_console_page_shows_the_result_the_runtime_reported(
    console: Console, dex: DexServer, settings: Settings
) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    test_id = console.api("POST", "/api/v1/tenant/sso/tests").json()["test"]["id"]
    _report(console, settings, test_id, ok=True)
    page = console.client.get(f"/console/sso?test={test_id}")
    assert 'data-state="passed"' in page.text
    assert "signed in as admin@example.com" in page.text
    assert 'id="enable-sso"' in page.text


def test_the_console_test_button_redirects_to_the_portal(console: Console, dex: DexServer) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    response = console.post_form("/console/sso/test")
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{RUNTIME_URL}/auth/sso/test?ticket=")


def test_disabling_turns_enforcement_off_and_is_recorded(
    console: Console, dex: DexServer, settings: Settings, db_session: Session
) -> None:
    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    test_id = console.api("POST", "/api/v1/tenant/sso/tests").json()["test"]["id"]
    _report(console, settings, test_id, ok=True)
    console.api("POST", "/api/v1/tenant/sso/enable")
    console.api("PUT", "/api/v1/tenant/sso/enforcement", {"enforced": True})
    disabled = console.api("POST", "/api/v1/tenant/sso/disable").json()
    assert (disabled["enabled"], disabled["enforced"]) == (False, False)
    assert _sso_events(db_session, console)[-2:] == ["SsoEnforced", "SsoDisabled"]


def test_secrets_survive_a_rotation_of_the_secret_key(
    console: Console, dex: DexServer, settings: Settings, db_session: Session
) -> None:
    from pydantic import SecretStr  # noqa: PLC0415

    from control_plane.identity.sso import service as sso  # noqa: PLC0415

    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    rotated = settings.model_copy(
        update={
            "secret_key": SecretStr("a-brand-new-secret-key-of-enough-length"),
            "old_secret_keys": [settings.secret_key],
        }
    )
    section = sso.sso_section(db_session, rotated, console.tenant)
    assert section is not None
    assert section["draft"]["oidc"]["client_secret"] == DEX_CLIENT.secret


def test_secrets_do_not_decrypt_under_an_unrelated_key(
    console: Console, dex: DexServer, settings: Settings, db_session: Session
) -> None:
    from pydantic import SecretStr  # noqa: PLC0415

    from control_plane.core.crypto import DecryptionFailed  # noqa: PLC0415
    from control_plane.identity.sso import service as sso  # noqa: PLC0415

    console.api("PUT", "/api/v1/tenant/sso", oidc_settings(dex))
    other = settings.model_copy(
        update={"secret_key": SecretStr("a-brand-new-secret-key-of-enough-length")}
    )
    with pytest.raises(DecryptionFailed):
        sso.sso_section(db_session, other, console.tenant)
