"""A tenant's SSO configuration: saved as a draft, tested with a real login, then enabled.

Nothing reaches the portal's live login until the newest test of the current draft passed.
Saving validates everything first (the IdP is contacted) and writes nothing on failure.
Client secrets are encrypted at rest; the SCIM token is kept only as its sha256.
Services flush; the request commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any, Literal
from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.crypto import secret_box
from control_plane.core.errors import Conflict, NotFound, ValidationFailed
from control_plane.core.settings import Settings
from control_plane.identity import events
from control_plane.identity.models import SsoConfiguration, SsoTest, SsoTestState
from control_plane.identity.sso import providers
from control_plane.tenants.models import Tenant

PortalRole = Literal["viewer", "member", "admin"]
SCIM_TOKEN_PREFIX = "bscim_"  # noqa: S105 - a prefix that makes leaked tokens findable
# A test that never reported back is not worth waiting for after this long.
TEST_TIMEOUT = dt.timedelta(minutes=15)


class ClaimMapping(msgspec.Struct, forbid_unknown_fields=True):
    email: str = "email"
    name: str = "name"
    groups: str = "groups"


class OidcInput(msgspec.Struct, forbid_unknown_fields=True):
    issuer: str
    client_id: str
    # Empty keeps the secret already saved, so an edit need not repeat it.
    client_secret: str = ""
    scopes: list[str] = msgspec.field(default_factory=lambda: ["openid", "email", "profile"])
    claims: ClaimMapping = msgspec.field(default_factory=ClaimMapping)

    def __repr__(self) -> str:
        return f"OidcInput(issuer={self.issuer!r}, client_id={self.client_id!r})"


class SamlInput(msgspec.Struct, forbid_unknown_fields=True):
    metadata_xml: str = ""
    metadata_url: str = ""
    entity_id: str = ""
    attributes: ClaimMapping = msgspec.field(default_factory=ClaimMapping)
    want_assertions_signed: bool = True


class RoleMappingInput(msgspec.Struct, forbid_unknown_fields=True):
    group: str
    role: PortalRole


class SsoSettingsInput(msgspec.Struct, forbid_unknown_fields=True):
    protocol: Literal["oidc", "saml"]
    oidc: OidcInput | None = None
    saml: SamlInput | None = None
    role_mapping: list[RoleMappingInput] = msgspec.field(default_factory=list)
    default_role: PortalRole = "viewer"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def configuration(session: Session, tenant_id: UUID) -> SsoConfiguration | None:
    return session.scalar(select(SsoConfiguration).where(SsoConfiguration.tenant_id == tenant_id))


def _configuration_for_update(session: Session, tenant: Tenant) -> SsoConfiguration:
    config = session.scalar(
        select(SsoConfiguration).where(SsoConfiguration.tenant_id == tenant.id).with_for_update()
    )
    if config is None:
        config = SsoConfiguration(tenant_id=tenant.id, version=0, enabled=False, enforced=False)
        session.add(config)
        session.flush()
    return config


def is_enforced(session: Session, tenant_id: UUID) -> bool:
    config = configuration(session, tenant_id)
    return config is not None and config.enabled and config.enforced


def _clean(value: str, field: str, label: str, limit: int = 255) -> str:
    value = value.strip()
    if not value:
        raise ValidationFailed({field: f"{label} is required."})
    if len(value) > limit:
        raise ValidationFailed({field: f"{label} is longer than {limit} characters."})
    return value


def _claims(mapping: ClaimMapping, field: str) -> dict[str, str]:
    return {
        name: _clean(getattr(mapping, name), f"{field}.{name}", f"The {name} claim")
        for name in ("email", "name", "groups")
    }


def _previous_secret(config: SsoConfiguration) -> str | None:
    for document in (config.draft, config.live):
        if document and document.get("oidc"):
            secret: str | None = document["oidc"].get("client_secret_encrypted")
            return secret
    return None


def _oidc_document(
    settings: Settings, data: OidcInput, previous_secret: str | None
) -> dict[str, Any]:
    client_id = _clean(data.client_id, "client_id", "The client id")
    scopes = [scope.strip() for scope in data.scopes if scope.strip()]
    if "openid" not in scopes:
        raise ValidationFailed({"scopes": "The scopes must include openid."})
    claims = _claims(data.claims, "claims")
    if data.client_secret:
        encrypted = secret_box(settings).encrypt(data.client_secret)
    elif previous_secret:
        encrypted = previous_secret
    else:
        raise ValidationFailed({"client_secret": "The client secret is required."})
    # Last, as it reaches out to the provider: every local mistake is reported first.
    discovery = providers.discover(
        data.issuer,
        timeout=settings.sso_fetch_timeout_seconds,
        require_https=settings.env == "production",
    )
    return {
        "issuer": discovery.issuer,
        "client_id": client_id,
        "client_secret_encrypted": encrypted,
        "scopes": scopes,
        "claims": claims,
        "endpoints": discovery.endpoints(),
    }


def _saml_document(settings: Settings, data: SamlInput) -> dict[str, Any]:
    if not data.want_assertions_signed:
        raise ValidationFailed(
            {
                "want_assertions_signed": "Backlot accepts only signed assertions; have your "
                "IdP sign them and keep this setting on."
            }
        )
    attributes = _claims(data.attributes, "attributes")
    xml = data.metadata_xml
    if data.metadata_url and not xml.strip():
        xml = providers.fetch_metadata(
            data.metadata_url,
            timeout=settings.sso_fetch_timeout_seconds,
            require_https=settings.env == "production",
        )
    metadata = providers.parse_metadata(xml, data.entity_id.strip() or None)
    return {
        "idp_metadata_xml": xml,
        "metadata_url": data.metadata_url.strip() or None,
        "entity_id": metadata.entity_id,
        "sso_url": metadata.sso_url,
        "attributes": attributes,
        "want_assertions_signed": True,
    }


def save_draft(
    session: Session, settings: Settings, tenant: Tenant, data: SsoSettingsInput, *, actor: str
) -> SsoConfiguration:
    """Validate ``data`` (contacting the IdP) and keep it as the draft to test."""
    config = configuration(session, tenant.id)
    previous_secret = _previous_secret(config) if config is not None else None
    document: dict[str, Any] = {
        "protocol": data.protocol,
        "oidc": None,
        "saml": None,
        "role_mapping": [
            {"group": _clean(m.group, "role_mapping", "A mapped group's name"), "role": m.role}
            for m in data.role_mapping
        ],
        "default_role": data.default_role,
    }
    if data.protocol == "oidc":
        if data.oidc is None:
            raise ValidationFailed({"oidc": "Give the OIDC settings."})
        document["oidc"] = _oidc_document(settings, data.oidc, previous_secret)
    else:
        if data.saml is None:
            raise ValidationFailed({"saml": "Give the SAML settings."})
        document["saml"] = _saml_document(settings, data.saml)

    config = _configuration_for_update(session, tenant)
    config.version += 1
    config.draft = document
    config.draft_version = config.version
    events.record(
        session,
        tenant,
        reason="SsoDraftSaved",
        message=f"{data.protocol} draft version {config.version}",
        actor=actor,
    )
    return config


def start_test(session: Session, tenant: Tenant, *, actor: str) -> SsoTest:
    """A pending test of the current draft; the runtime reports its outcome."""
    config = configuration(session, tenant.id)
    if config is None or config.draft is None or config.draft_version is None:
        raise Conflict("Save a configuration first: there is no draft to test.")
    if not tenant.runtime_url or tenant.state != "active":
        raise Conflict("Your portal is not running, so the login cannot be tried yet.")
    test = SsoTest(
        tenant_id=tenant.id,
        draft_version=config.draft_version,
        state=SsoTestState.PENDING,
        actor=actor,
        result={},
    )
    session.add(test)
    session.flush()
    events.record(
        session,
        tenant,
        reason="SsoTestStarted",
        message=f"test {test.id} of draft version {config.draft_version}",
        actor=actor,
    )
    return test


def get_test(session: Session, tenant: Tenant, test_id: str) -> SsoTest:
    try:
        key = UUID(test_id)
    except ValueError:
        raise NotFound(f"no SSO test {test_id}") from None
    test = session.get(SsoTest, key)
    if test is None or test.tenant_id != tenant.id:
        raise NotFound(f"no SSO test {test_id}")
    return test


def record_test_result(
    session: Session, tenant: Tenant, test_id: str, result: dict[str, Any]
) -> None:
    """What the runtime reports after running the test login (``SSO_TEST_RESULT_HANDLER``)."""
    test = get_test(session, tenant, test_id)
    if test.state != SsoTestState.PENDING:
        raise Conflict(f"SSO test {test_id} already has its result")
    if _now() - test.created_at > TEST_TIMEOUT:
        raise Conflict(f"SSO test {test_id} expired; start a new one")
    passed = bool(result.get("ok"))
    test.state = SsoTestState.PASSED if passed else SsoTestState.FAILED
    test.result = {
        "protocol": result.get("protocol"),
        "email": result.get("email"),
        "groups": list(result.get("groups") or []),
        "role": result.get("role"),
        "claims": dict(result.get("claims") or {}),
    }
    test.error = None if passed else str(result.get("error") or "the login did not succeed")
    test.completed_at = _now()
    events.record(
        session,
        tenant,
        reason="SsoTestPassed" if passed else "SsoTestFailed",
        message=(
            f"draft version {test.draft_version}: signed in as {result.get('email')}"
            if passed
            else f"draft version {test.draft_version}: {test.error}"
        ),
        actor="runtime",
    )


def latest_test(session: Session, tenant_id: UUID, draft_version: int) -> SsoTest | None:
    return session.scalar(
        select(SsoTest)
        .where(SsoTest.tenant_id == tenant_id, SsoTest.draft_version == draft_version)
        .order_by(SsoTest.created_at.desc())
        .limit(1)
    )


def can_enable(session: Session, config: SsoConfiguration) -> bool:
    if config.draft is None or config.draft_version is None:
        return config.live is not None and not config.enabled
    test = latest_test(session, config.tenant_id, config.draft_version)
    return test is not None and test.state == SsoTestState.PASSED


def enable(session: Session, tenant: Tenant, *, actor: str) -> SsoConfiguration:
    """Make the tested draft live (or turn a disabled live configuration back on)."""
    config = _configuration_for_update(session, tenant)
    if config.draft is None and config.live is None:
        raise Conflict("Save and test a configuration before enabling SSO.")
    if not can_enable(session, config):
        raise Conflict(
            "Run “Test connection” on this version of the configuration and sign in "
            "successfully before enabling it."
        )
    if config.draft is not None:
        config.live = config.draft
        config.draft = None
        config.draft_version = None
    config.enabled = True
    config.version += 1
    assert config.live is not None
    events.record(
        session,
        tenant,
        reason="SsoEnabled",
        message=f"{config.live['protocol']} version {config.version}",
        actor=actor,
    )
    return config


def disable(session: Session, tenant: Tenant, *, actor: str) -> SsoConfiguration:
    config = _configuration_for_update(session, tenant)
    if not config.enabled:
        raise Conflict("SSO is not enabled.")
    config.enabled = False
    config.enforced = False
    config.version += 1
    events.record(session, tenant, reason="SsoDisabled", message="", actor=actor)
    return config


def set_enforced(
    session: Session, tenant: Tenant, enforced: bool, *, actor: str
) -> SsoConfiguration:
    """Enforced: password and handoff logins are off for everyone but owners (break-glass)."""
    config = _configuration_for_update(session, tenant)
    if enforced and not config.enabled:
        raise Conflict("Enable SSO before enforcing it.")
    if config.enforced == enforced:
        return config
    config.enforced = enforced
    config.version += 1
    events.record(
        session,
        tenant,
        reason="SsoEnforced" if enforced else "SsoEnforcementLifted",
        message="password and portal handoff logins off except the owners' break-glass"
        if enforced
        else "",
        actor=actor,
    )
    return config


def rotate_scim_token(session: Session, tenant: Tenant, *, actor: str) -> str:
    """A new SCIM bearer token, returned once; the previous one stops working."""
    token = SCIM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    config = _configuration_for_update(session, tenant)
    first = config.scim_token_sha256 is None
    config.scim_token_sha256 = hashlib.sha256(token.encode()).hexdigest()
    config.scim_token_rotated_at = _now()
    config.version += 1
    events.record(
        session,
        tenant,
        reason="ScimTokenIssued" if first else "ScimTokenRotated",
        message="",
        actor=actor,
    )
    return token


def _runtime_document(settings: Settings, document: dict[str, Any]) -> dict[str, Any]:
    """A stored document as the runtime reads it: secrets decrypted, console-only keys gone."""
    oidc = document.get("oidc")
    saml = document.get("saml")
    return {
        "protocol": document["protocol"],
        "oidc": {
            "issuer": oidc["issuer"],
            "client_id": oidc["client_id"],
            "client_secret": secret_box(settings).decrypt(oidc["client_secret_encrypted"]),
            "scopes": list(oidc["scopes"]),
            "claims": dict(oidc["claims"]),
        }
        if oidc
        else None,
        "saml": {
            "idp_metadata_xml": saml["idp_metadata_xml"],
            "attributes": dict(saml["attributes"]),
            "want_assertions_signed": True,
        }
        if saml
        else None,
        "role_mapping": [dict(m) for m in document["role_mapping"]],
        "default_role": document["default_role"],
    }


def sso_section(session: Session, settings: Settings, tenant: Tenant) -> dict[str, Any] | None:
    """The runtime's ``sso`` section (cross-plane contract §3); None when never configured."""
    config = configuration(session, tenant.id)
    if config is None:
        return None
    if config.live is not None:
        live = _runtime_document(settings, config.live)
    else:
        protocol = config.draft["protocol"] if config.draft else "oidc"
        live = {
            "protocol": protocol,
            "oidc": None,
            "saml": None,
            "role_mapping": [],
            "default_role": "viewer",
        }
    draft = None
    if config.draft is not None:
        draft = {
            "version": config.draft_version,
            "enabled": False,
            "enforced": False,
            **_runtime_document(settings, config.draft),
        }
    return {
        "version": config.version,
        "enabled": config.enabled,
        "enforced": config.enabled and config.enforced,
        **live,
        "scim_token_sha256": config.scim_token_sha256,
        "draft": draft,
    }


def view(session: Session, config: SsoConfiguration | None) -> dict[str, Any]:
    """What the console and the tenant API show: never a secret, only whether one is set."""
    if config is None:
        return {
            "version": 0,
            "enabled": False,
            "enforced": False,
            "live": None,
            "draft": None,
            "draft_version": None,
            "can_enable": False,
            "scim_token_set": False,
            "scim_token_rotated_at": None,
            "latest_test": None,
        }

    def public(document: dict[str, Any] | None) -> dict[str, Any] | None:
        if document is None:
            return None
        shown = {k: v for k, v in document.items() if k not in ("oidc", "saml")}
        if document.get("oidc"):
            oidc = dict(document["oidc"])
            oidc["client_secret_set"] = bool(oidc.pop("client_secret_encrypted", None))
            shown["oidc"] = oidc
        else:
            shown["oidc"] = None
        if document.get("saml"):
            saml = dict(document["saml"])
            shown["saml"] = saml
        else:
            shown["saml"] = None
        return shown

    latest = (
        latest_test(session, config.tenant_id, config.draft_version)
        if config.draft_version is not None
        else None
    )
    return {
        "version": config.version,
        "enabled": config.enabled,
        "enforced": config.enforced,
        "live": public(config.live),
        "draft": public(config.draft),
        "draft_version": config.draft_version,
        "can_enable": can_enable(session, config),
        "scim_token_set": config.scim_token_sha256 is not None,
        "scim_token_rotated_at": config.scim_token_rotated_at.isoformat()
        if config.scim_token_rotated_at
        else None,
        "latest_test": describe_test(latest) if latest else None,
    }


def describe_test(test: SsoTest) -> dict[str, Any]:
    return {
        "id": str(test.id),
        "draft_version": test.draft_version,
        "state": str(test.state),
        "error": test.error,
        "result": dict(test.result),
        "started_at": test.created_at.isoformat(),
        "completed_at": test.completed_at.isoformat() if test.completed_at else None,
    }
