"""The plugin registry, each tenant's installed plugins and bought add-ons, issued tokens."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.core.database import Base


class Tier(enum.StrEnum):
    FREE = "free"
    PREMIUM = "premium"


class AddOnState(enum.StrEnum):
    # Subscription item added; waiting for the payment to be confirmed.
    PENDING = "pending"
    ACTIVE = "active"
    # Cancelled by the tenant; entitled until the end of the paid period.
    CANCELING = "canceling"
    CANCELED = "canceled"


def _enum(kind: type[enum.StrEnum], name: str) -> Enum:
    return Enum(
        kind,
        name=name,
        native_enum=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class Plugin(Base):
    """A plugin in the marketplace. ``key`` is the id plugins are known by everywhere."""

    __tablename__ = "marketplace_plugins"

    key: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    publisher: Mapped[str] = mapped_column(String(100))
    tier: Mapped[Tier] = mapped_column(_enum(Tier, "marketplace_tier"))
    # The Stripe price lookup key of the add-on a premium plugin is sold as.
    price_lookup_key: Mapped[str | None] = mapped_column(String(100))
    # Plans whose subscription includes this premium plugin without buying it.
    included_in_plans: Mapped[list[str]] = mapped_column(JsonB, default=list)
    # Config keys the control plane fills with a secret derived per install (never stored).
    generated_secrets: Mapped[list[str]] = mapped_column(JsonB, default=list)


class PluginVersion(Base):
    __tablename__ = "marketplace_plugin_versions"
    __table_args__ = (UniqueConstraint("plugin_id", "version"),)

    plugin_id: Mapped[UUID] = mapped_column(
        ForeignKey("marketplace_plugins.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(String(32))
    # PEP 440 specifier of the runtime releases this version runs on, e.g. ">=0.1,<1".
    runtime_releases: Mapped[str] = mapped_column(String(100))
    permissions: Mapped[list[str]] = mapped_column(JsonB, default=list)
    changelog: Mapped[str] = mapped_column(Text, default="")
    deprecated_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    deprecation_reason: Mapped[str | None] = mapped_column(Text)


class Installation(Base):
    """A plugin a tenant installed, at one version, with its config."""

    __tablename__ = "marketplace_installations"
    __table_args__ = (UniqueConstraint("tenant_id", "plugin_id"),)

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    plugin_id: Mapped[UUID] = mapped_column(ForeignKey("marketplace_plugins.id"))
    version: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    installed_by: Mapped[str] = mapped_column(String(255))


class AddOn(Base):
    """A premium plugin a tenant bought: one item on its Stripe subscription."""

    __tablename__ = "marketplace_addons"
    __table_args__ = (UniqueConstraint("tenant_id", "plugin_id"),)

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    plugin_id: Mapped[UUID] = mapped_column(ForeignKey("marketplace_plugins.id"))
    state: Mapped[AddOnState] = mapped_column(_enum(AddOnState, "marketplace_addon_state"))
    subscription_item_id: Mapped[str | None] = mapped_column(String(255))
    current_period_end: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class EntitlementToken(Base):
    """The token last issued to a tenant's runtime, re-used until half its life has passed."""

    __tablename__ = "marketplace_entitlement_tokens"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    token: Mapped[str] = mapped_column(Text)
    # A digest of the entitlements in the token: a change re-issues it at once.
    content_digest: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
