"""The runtime's configuration, read from `BACKLOT_RUNTIME_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    """Everything one tenant's runtime instance needs to know about itself.

    The control plane sets these per tenant (environment of the local process, or the
    Deployment's env in Kubernetes); this is the published runtime-config contract.
    """

    model_config = SettingsConfigDict(env_prefix="BACKLOT_RUNTIME_", extra="ignore")

    tenant_id: str = Field(min_length=1)
    tenant_slug: str = Field(min_length=1)
    organization_name: str = Field(min_length=1)
    database_url: str = "sqlite:///runtime.db"
    data_dir: Path = Path(".")
    host: str = "127.0.0.1"
    port: int = Field(default=7007, ge=0, le=65535)
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Lets tests and operators exercise a slow boot (e.g. a worker killed mid-provisioning)
    # without a slow machine: `serve` waits this long before it starts accepting.
    startup_delay_seconds: float = Field(default=0.0, ge=0.0)

    # The uplink to the control plane. Empty URL: the runtime runs standalone (no SSO,
    # no usage reports), which is how it runs in its own tests.
    control_plane_url: str = ""
    control_plane_token: SecretStr = SecretStr("")
    config_refresh_seconds: float = Field(default=10.0, gt=0)
    # How often the runtime reports its active and provisioned users (seats) up.
    usage_report_seconds: float = Field(default=900.0, gt=0)

    # --- Catalog and access ---
    # Static service tokens (like Backstage's external access tokens): a JSON list of
    # {"token_sha256": <hex>} or {"token": <str>} with "subject" and an optional "role".
    service_tokens: SecretStr = SecretStr("[]")
    # Hosts `url:` locations may be read from (`host` or `host:port`; `*.domain` for subdomains).
    catalog_url_allow_hosts: list[str] = Field(default_factory=list)
    # Directories `file:` locations must lie inside; none means `file:` locations are refused.
    catalog_file_roots: list[Path] = Field(default_factory=list)
    # How often every registered location is read again; 0 turns the periodic refresh off.
    catalog_refresh_interval_seconds: float = Field(default=300.0, ge=0.0)
    # What happens to an entity no location emits any more (Backstage's `orphanStrategy`).
    catalog_orphan_strategy: Literal["delete", "keep"] = "delete"
    # Refuse to register or delete locations (Backstage's `catalog.readonly`).
    catalog_readonly: bool = False
    catalog_url_read_timeout_seconds: float = Field(default=10.0, gt=0.0)

    # --- Authentication ---
    # Where users reach this portal; the OIDC callback, the SAML ACS and entity id and the
    # session cookie's `Secure` flag follow from it. Empty: http://<host>:<port>.
    public_url: str = ""
    # A session ends after this long without a request, and after the absolute limit anyway.
    session_idle_timeout_seconds: int = Field(default=1800, gt=0)
    session_absolute_timeout_seconds: int = Field(default=43200, gt=0)
    # Clock skew tolerated when checking token lifetimes (ID tokens, handoff tickets).
    auth_clock_skew_seconds: int = Field(default=30, ge=0)
    # How long the runtime waits for an identity provider or the control plane's keys.
    auth_http_timeout_seconds: float = Field(default=5.0, gt=0)

    @property
    def portal_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    # Plugins. A valid entitlement token keeps counting this long past its expiry while the
    # control plane is unreachable; after that premium plugins stop and free ones run on.
    entitlement_grace_seconds: float = Field(default=24 * 3600.0, ge=0)
    # How often the plugin host re-checks expiry and runs plugins' background jobs.
    plugin_tick_seconds: float = Field(default=2.0, gt=0)

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "runtime.lock"

    @property
    def record_path(self) -> Path:
        return self.data_dir / "runtime.json"


def load_settings() -> RuntimeSettings:
    """Read the settings from the environment; raises pydantic's ValidationError."""
    return RuntimeSettings()
