"""The runtime's SSO section (contract §3) and where the current one is held.

The control plane sends the section through the uplink; `SsoState` keeps the newest one, and
the control plane's identity (issuer and JWKS address) that handoff tickets are checked with.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import msgspec
import structlog

from tenant_runtime.auth.principal import Role

logger = structlog.get_logger(__name__)

Protocol = Literal["oidc", "saml"]


class ClaimNames(msgspec.Struct, frozen=True):
    email: str = "email"
    name: str = "name"
    groups: str = "groups"


class OidcSettings(msgspec.Struct, frozen=True):
    issuer: str
    client_id: str
    client_secret: str
    scopes: list[str] = msgspec.field(default_factory=lambda: ["openid", "email", "profile"])
    claims: ClaimNames = msgspec.field(default_factory=ClaimNames)

    def __repr__(self) -> str:
        # The client secret must never reach a log line through a repr.
        return f"OidcSettings(issuer={self.issuer!r}, client_id={self.client_id!r})"


class SamlSettings(msgspec.Struct, frozen=True):
    idp_metadata_xml: str
    attributes: ClaimNames = msgspec.field(default_factory=ClaimNames)
    want_assertions_signed: bool = True


class RoleMapping(msgspec.Struct, frozen=True):
    group: str
    role: Role


class SsoDraft(msgspec.Struct, frozen=True):
    """A configuration under test: the live keys without the draft and the SCIM token."""

    version: int
    enabled: bool = False
    enforced: bool = False
    protocol: Protocol = "oidc"
    oidc: OidcSettings | None = None
    saml: SamlSettings | None = None
    role_mapping: list[RoleMapping] = msgspec.field(default_factory=list)
    default_role: Role = "viewer"


class SsoConfig(msgspec.Struct, frozen=True):
    version: int
    enabled: bool = False
    enforced: bool = False
    protocol: Protocol = "oidc"
    oidc: OidcSettings | None = None
    saml: SamlSettings | None = None
    role_mapping: list[RoleMapping] = msgspec.field(default_factory=list)
    default_role: Role = "viewer"
    scim_token_sha256: str | None = None
    draft: SsoDraft | None = None

    def __repr__(self) -> str:
        return (
            f"SsoConfig(version={self.version}, enabled={self.enabled}, "
            f"enforced={self.enforced}, protocol={self.protocol!r})"
        )


# What a login is run with: the live section, or the draft under test.
LoginConfig = SsoConfig | SsoDraft


def parse_sso_section(raw: Any) -> SsoConfig | None:
    """The section from the config document (None: no SSO); raises msgspec.ValidationError."""
    if raw is None:
        return None
    return msgspec.convert(raw, SsoConfig)


def role_for_groups(config: LoginConfig, groups: list[str]) -> Role:
    """The strongest role any of the user's groups maps to, else the default role."""
    order = {"viewer": 0, "member": 1, "admin": 2}
    mapped: list[Role] = [m.role for m in config.role_mapping if m.group in set(groups)]
    if not mapped:
        return config.default_role
    return max(mapped, key=lambda role: order[role])


class SsoState:
    """The newest SSO section and control-plane identity; set by the uplink's callbacks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sso: SsoConfig | None = None
        self._issuer: str | None = None
        self._jwks_uri: str | None = None

    @property
    def sso(self) -> SsoConfig | None:
        with self._lock:
            return self._sso

    @property
    def control_plane_issuer(self) -> str | None:
        with self._lock:
            return self._issuer

    @property
    def control_plane_jwks_uri(self) -> str | None:
        with self._lock:
            return self._jwks_uri

    def set_sso(self, raw: Any) -> None:
        """Uplink callback for the `sso` section; a malformed section keeps the previous one."""
        try:
            config = parse_sso_section(raw)
        except msgspec.ValidationError as error:
            logger.error("sso.config_rejected", reason=str(error))
            return
        with self._lock:
            self._sso = config
        logger.info(
            "sso.config_applied",
            version=None if config is None else config.version,
            enabled=config is not None and config.enabled,
            enforced=config is not None and config.enforced,
            protocol=None if config is None else config.protocol,
        )

    def set_issuer(self, issuer: Any) -> None:
        with self._lock:
            self._issuer = issuer if isinstance(issuer, str) and issuer else None

    def set_jwks_uri(self, jwks_uri: Any) -> None:
        with self._lock:
            self._jwks_uri = jwks_uri if isinstance(jwks_uri, str) and jwks_uri else None
