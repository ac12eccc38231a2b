"""Control-plane configuration, read from the environment (prefix ``BACKLOT_``)."""

from __future__ import annotations

import secrets
import sys
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the control plane, its workers and its CLI read from the environment.

    The defaults are the embedded default: SQLite files and an embedded broker under
    ``data_dir`` and the ``local`` runtime driver, so that a fresh checkout runs with
    nothing installed. Production sets ``BACKLOT_ENV=production`` and real URLs.
    """

    model_config = SettingsConfigDict(env_prefix="BACKLOT_", env_file=None, extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".backlot")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = ""
    database_url: str = ""
    broker_url: str = ""
    secret_key: SecretStr = SecretStr("")
    base_domain: str = "localhost"

    runtime_driver: Literal["local", "kubernetes"] = "local"
    runtime_release: str = "0.1.0"
    local_runtime_python: str = sys.executable
    runtime_start_timeout_seconds: float = Field(default=30.0, gt=0)
    runtime_startup_delay_seconds: float = Field(default=0.0, ge=0)
    # Where runtimes reach the control plane's internal API; empty means the public URL.
    # In a cluster this is usually the in-cluster Service, e.g. http://backlot-api.backlot:8000.
    runtime_control_plane_url: str = ""

    # The kubernetes driver (production). Names and addresses as the cluster sees them.
    kube_config: str = ""
    kube_context: str = ""
    kube_runtime_image: str = "backlot/tenant-runtime"
    kube_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    kube_ingress_class: str = "nginx"
    kube_ingress_namespace: str = "ingress-nginx"
    kube_control_plane_namespace: str = "backlot"
    kube_cluster_issuer: str = "letsencrypt"
    kube_database_cidr: str = "10.0.0.0/8"
    kube_pod_security_version: str = "v1.34"
    # JSON lists, for clusters whose tenant nodes are tainted or labelled.
    kube_tolerations: str = "[]"
    kube_node_selector: str = "{}"
    # The suspended page: a suspended portal's Ingress sends its users to the control plane's
    # Service (through an ExternalName Service in the tenant namespace), which serves the page.
    kube_control_plane_service: str = "backlot-api"
    kube_control_plane_service_port: int = Field(default=80, gt=0, lt=65536)
    tenant_database_admin_url: SecretStr = SecretStr("")
    tenant_database_host: str = ""

    deletion_retention_seconds: float = Field(default=30 * 24 * 3600, ge=0)

    reconcile_lease_seconds: float = Field(default=60.0, gt=0)
    reconcile_max_retries: int = Field(default=8, ge=0)
    resync_interval_seconds: float = Field(default=30.0, gt=0)
    outbox_relay_interval_seconds: float = Field(default=2.0, gt=0)
    broker_check_timeout_seconds: float = Field(default=2.0, gt=0)

    # Billing (Stripe). No API key: billing is off, only the free plan can sign up.
    # A real test account needs only BACKLOT_STRIPE_API_KEY and BACKLOT_STRIPE_WEBHOOK_SECRETS;
    # the tests point stripe_api_base at stripe-mock or localstripe.
    stripe_api_key: SecretStr = SecretStr("")
    stripe_api_base: str = ""
    # Comma-separated endpoint secrets: during a rotation both the old and the new one verify.
    stripe_webhook_secrets: SecretStr = SecretStr("")
    stripe_webhook_tolerance_seconds: int = Field(default=300, gt=0)
    stripe_max_network_retries: int = Field(default=2, ge=0)
    billing_grace_seconds: float = Field(default=7 * 24 * 3600, ge=0)
    billing_cancel_retention_seconds: float = Field(default=30 * 24 * 3600, ge=0)
    billing_seat_debounce_seconds: float = Field(default=15 * 60, ge=0)
    billing_event_retry_seconds: float = Field(default=60.0, gt=0)
    billing_event_max_attempts: int = Field(default=50, gt=0)
    billing_interval_seconds: float = Field(default=30.0, gt=0)
    billing_reconcile_interval_seconds: float = Field(default=24 * 3600, gt=0)

    # Marketplace. Entitlement tokens live this long; a runtime gets a new one at half-life.
    entitlement_token_lifetime_seconds: int = Field(default=3600, ge=60)

    # Fleet: operators' admin API and rollouts.
    rollout_tick_seconds: float = Field(default=5.0, gt=0)
    # Where webhooks wait to be handled, for the webhook lag metric:
    # "table.received_column.handled_column"; "" = no such metric. Billing's Stripe inbox.
    metrics_webhook_inbox: str = "billing_stripe_events.created_at.handled_at"
    operator_oidc_issuer: str = ""
    operator_oidc_client_id: str = ""
    operator_oidc_client_secret: SecretStr = SecretStr("")
    # Operators who may sign in through the OIDC provider, by e-mail, with their scopes:
    # JSON {"ops@vendor.example": ["read", "operate"]}.
    operator_oidc_scopes: str = "{}"

    session_max_age_seconds: int = Field(default=8 * 3600, gt=0)

    # Identity and SSO.
    # Earlier values of BACKLOT_SECRET_KEY (JSON list): secrets encrypted under them still
    # decrypt after a rotation of the secret key.
    old_secret_keys: list[SecretStr] = Field(default_factory=list)
    # How long a retired signing key stays in the JWKS, so tokens it signed still verify.
    signing_key_retention_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    handoff_ticket_seconds: int = Field(default=60, gt=0, le=300)
    # Outgoing mail: smtp://user:password@host:587 (STARTTLS) or smtps://...:465. Empty: mail
    # is written as .eml files under <data dir>/mail (the embedded default).
    smtp_url: SecretStr = SecretStr("")
    mail_from: str = "Backlot <no-reply@backlot.localhost>"
    email_verification_seconds: int = Field(default=48 * 3600, gt=0)
    password_reset_seconds: int = Field(default=3600, gt=0)
    login_max_failures: int = Field(default=5, gt=0)
    login_lockout_seconds: int = Field(default=15 * 60, gt=0)
    # Seconds to wait for an identity provider's discovery document or metadata.
    sso_fetch_timeout_seconds: float = Field(default=5.0, gt=0)
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _require_production_secrets(self) -> Settings:
        if self.env == "production":
            missing = [
                name
                for name, value in (
                    ("BACKLOT_DATABASE_URL", self.database_url),
                    ("BACKLOT_BROKER_URL", self.broker_url),
                    ("BACKLOT_SECRET_KEY", self.secret_key.get_secret_value()),
                    ("BACKLOT_PUBLIC_URL", self.public_url),
                )
                if not value
            ]
            if missing:
                msg = f"production needs these settings: {', '.join(missing)}"
                raise ValueError(msg)
        return self

    @property
    def billing_enabled(self) -> bool:
        return bool(self.stripe_api_key.get_secret_value())

    @property
    def stripe_webhook_secret_list(self) -> list[str]:
        raw = self.stripe_webhook_secrets.get_secret_value()
        return [s.strip() for s in raw.split(",") if s.strip()]

    @cached_property
    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'control-plane.db'}"

    @property
    def resolved_broker_url(self) -> str:
        # kombu's SQLAlchemy transport turns a SQLite file into a broker: the embedded default.
        return self.broker_url or f"sqla+sqlite:///{self.resolved_data_dir / 'broker.db'}"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def resolved_runtime_control_plane_url(self) -> str:
        return (self.runtime_control_plane_url or self.resolved_public_url).rstrip("/")

    @property
    def cookies_secure(self) -> bool:
        return urlsplit(self.resolved_public_url).scheme == "https"

    @property
    def runtimes_dir(self) -> Path:
        path = self.resolved_data_dir / "runtimes"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def session_secret(self) -> bytes:
        """32 bytes for the session cookie cipher.

        Outside production a key is generated once and kept in the data directory so
        sessions survive a restart of ``make run``.
        """
        configured = self.secret_key.get_secret_value()
        if configured:
            return configured.encode().ljust(32, b"\0")[:32]
        key_file = self.resolved_data_dir / "secret.key"
        if not key_file.exists():
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_hex(16))
        return key_file.read_text().strip().encode()[:32]

    @property
    def encryption_secret(self) -> bytes:
        """Key material for encryption at rest: the whole secret key, not the cookie's 32 bytes."""
        configured = self.secret_key.get_secret_value()
        return configured.encode() if configured else self.session_secret

    @property
    def mail_dir(self) -> Path:
        return self.resolved_data_dir / "mail"


def load_settings() -> Settings:
    return Settings()
