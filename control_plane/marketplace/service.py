"""The plugin registry and each tenant's installed plugins. Services flush; callers commit."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from control_plane.core.crypto import secret_box
from control_plane.core.errors import Conflict, NotFound, ValidationFailed
from control_plane.core.settings import Settings
from control_plane.marketplace import audit, plans
from control_plane.marketplace.errors import Incompatible, NotEntitled
from control_plane.marketplace.models import (
    AddOn,
    AddOnState,
    Installation,
    Plugin,
    PluginVersion,
    Tier,
)
from control_plane.tenants.models import Tenant

# Add-ons in these states entitle the tenant: paid, or cancelled but paid to the period's end.
ENTITLING_ADDON_STATES = (AddOnState.ACTIVE, AddOnState.CANCELING)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- the registry ------------------------------------------------------------------------


@dataclass(frozen=True)
class PluginDraft:
    key: str
    name: str
    description: str
    publisher: str
    tier: Tier
    price_lookup_key: str | None = None
    included_in_plans: Sequence[str] = ()
    generated_secrets: Sequence[str] = ()


@dataclass(frozen=True)
class VersionDraft:
    version: str
    runtime_releases: str
    permissions: Sequence[str] = ()
    changelog: str = ""


def _check_version(draft: VersionDraft) -> None:
    errors: dict[str, str] = {}
    try:
        Version(draft.version)
    except InvalidVersion:
        errors["version"] = f"version {draft.version!r} is not a version like 1.2.0"
    try:
        SpecifierSet(draft.runtime_releases)
    except InvalidSpecifier:
        errors["runtime_releases"] = (
            f"runtime_releases {draft.runtime_releases!r} is not a range like '>=0.1,<1'"
        )
    if errors:
        raise ValidationFailed(errors)


def find_plugin(session: Session, key: str) -> Plugin | None:
    return session.scalar(select(Plugin).where(Plugin.key == key))


def get_plugin(session: Session, key: str) -> Plugin:
    plugin = find_plugin(session, key)
    if plugin is None:
        raise NotFound(f"there is no plugin {key!r} in the marketplace")
    return plugin


def save_plugin(session: Session, draft: PluginDraft) -> Plugin:
    """Create the plugin or update its listing (its versions are published separately)."""
    if draft.tier == Tier.PREMIUM and not draft.price_lookup_key:
        raise ValidationFailed({"price_lookup_key": "a premium plugin needs a price lookup key"})
    plugin = find_plugin(session, draft.key)
    if plugin is None:
        plugin = Plugin(key=draft.key)
        session.add(plugin)
    plugin.name = draft.name
    plugin.description = draft.description
    plugin.publisher = draft.publisher
    plugin.tier = draft.tier
    plugin.price_lookup_key = draft.price_lookup_key
    plugin.included_in_plans = list(draft.included_in_plans)
    plugin.generated_secrets = list(draft.generated_secrets)
    session.flush()
    return plugin


def versions(session: Session, plugin: Plugin) -> list[PluginVersion]:
    """The plugin's versions, newest first."""
    found = session.scalars(select(PluginVersion).where(PluginVersion.plugin_id == plugin.id))
    return sorted(found, key=lambda v: Version(v.version), reverse=True)


def find_version(session: Session, plugin: Plugin, version: str) -> PluginVersion | None:
    return session.scalar(
        select(PluginVersion).where(
            PluginVersion.plugin_id == plugin.id, PluginVersion.version == version
        )
    )


def publish_version(session: Session, plugin: Plugin, draft: VersionDraft) -> PluginVersion:
    _check_version(draft)
    if find_version(session, plugin, draft.version) is not None:
        raise Conflict(f"{plugin.key} {draft.version} is already published; publish a new version")
    row = PluginVersion(
        plugin_id=plugin.id,
        version=draft.version,
        runtime_releases=draft.runtime_releases,
        permissions=list(draft.permissions),
        changelog=draft.changelog,
    )
    session.add(row)
    session.flush()
    return row


def deprecate_version(session: Session, plugin: Plugin, version: str, reason: str) -> PluginVersion:
    row = find_version(session, plugin, version)
    if row is None:
        raise NotFound(f"{plugin.key} has no version {version}")
    if row.deprecated_at is None:
        row.deprecated_at = now()
        row.deprecation_reason = reason or "deprecated by the publisher"
    session.flush()
    return row


def search(session: Session, query: str = "") -> list[Plugin]:
    statement = select(Plugin).order_by(Plugin.name)
    if query.strip():
        pattern = f"%{query.strip().lower()}%"
        statement = statement.where(
            or_(
                Plugin.key.ilike(pattern),
                Plugin.name.ilike(pattern),
                Plugin.description.ilike(pattern),
                Plugin.publisher.ilike(pattern),
            )
        )
    return list(session.scalars(statement))


# -- what a tenant may run ---------------------------------------------------------------


def addon(session: Session, tenant: Tenant, plugin: Plugin) -> AddOn | None:
    return session.scalar(
        select(AddOn).where(AddOn.tenant_id == tenant.id, AddOn.plugin_id == plugin.id)
    )


def is_entitled(session: Session, tenant: Tenant, plugin: Plugin) -> bool:
    if plugin.tier == Tier.FREE or plans.includes(tenant.plan, plugin.key):
        return True
    bought = addon(session, tenant, plugin)
    if bought is None or bought.state not in ENTITLING_ADDON_STATES:
        return False
    # A cancelled add-on runs until the end of the period already paid for.
    return bought.state == AddOnState.ACTIVE or (
        bought.current_period_end is not None and bought.current_period_end > now()
    )


def entitled_plugins(session: Session, tenant: Tenant) -> list[Plugin]:
    return [p for p in search(session) if is_entitled(session, tenant, p)]


def incompatibility(tenant: Tenant, row: PluginVersion) -> str | None:
    """Why ``row`` cannot run on the tenant's portal, or None."""
    if row.deprecated_at is not None:
        return f"version {row.version} is deprecated: {row.deprecation_reason}"
    try:
        release = Version(tenant.runtime_release)
    except InvalidVersion:
        return f"the portal's runtime release {tenant.runtime_release!r} is not a version"
    if not SpecifierSet(row.runtime_releases).contains(release, prereleases=True):
        return (
            f"version {row.version} supports runtime releases {row.runtime_releases}; "
            f"this portal runs {tenant.runtime_release}"
        )
    return None


def newest_compatible(session: Session, tenant: Tenant, plugin: Plugin) -> PluginVersion | None:
    return next((v for v in versions(session, plugin) if incompatibility(tenant, v) is None), None)


def _version_to_install(
    session: Session, tenant: Tenant, plugin: Plugin, version: str | None
) -> PluginVersion:
    if not is_entitled(session, tenant, plugin):
        raise NotEntitled(
            f"{plugin.name} is a premium plugin: buy it or move to a plan that includes it"
        )
    if version is None:
        row = newest_compatible(session, tenant, plugin)
        if row is None:
            raise Incompatible(
                f"no version of {plugin.name} runs on runtime release {tenant.runtime_release}"
            )
        return row
    row = find_version(session, plugin, version)
    if row is None:
        raise NotFound(f"{plugin.key} has no version {version}")
    reason = incompatibility(tenant, row)
    if reason is not None:
        raise Incompatible(f"{plugin.name} {version} cannot be installed: {reason}")
    return row


# -- installing --------------------------------------------------------------------------


def installation(session: Session, tenant: Tenant, plugin: Plugin) -> Installation | None:
    return session.scalar(
        select(Installation).where(
            Installation.tenant_id == tenant.id, Installation.plugin_id == plugin.id
        )
    )


def installed(session: Session, tenant: Tenant) -> list[tuple[Plugin, Installation]]:
    rows = session.execute(
        select(Plugin, Installation)
        .join(Installation, Installation.plugin_id == Plugin.id)
        .where(Installation.tenant_id == tenant.id)
        .order_by(Plugin.key)
    ).all()
    return [(row[0], row[1]) for row in rows]


SEALED = "sealed"


def _sealed_config(
    config: dict[str, Any], plugin: Plugin, settings: Settings | None
) -> dict[str, Any]:
    """The config as stored: encrypted, since plugin configs carry credentials (kubeconfigs)."""
    reserved = sorted(set(config) & set(plugin.generated_secrets))
    if reserved:
        raise ValidationFailed(
            {"config": f"{', '.join(reserved)} is set by Backlot for each install; leave it out"}
        )
    if not config:
        return {}
    if settings is None:
        raise ValidationFailed({"config": "this caller cannot store a plugin config"})
    return {SEALED: secret_box(settings).encrypt(json.dumps(config))}


def plain_config(row: Installation, settings: Settings) -> dict[str, Any]:
    sealed = row.config.get(SEALED)
    if not sealed:
        return {}
    config: dict[str, Any] = json.loads(secret_box(settings).decrypt(sealed))
    return config


def install(
    session: Session,
    tenant: Tenant,
    plugin: Plugin,
    *,
    actor: str,
    version: str | None = None,
    config: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> Installation:
    if installation(session, tenant, plugin) is not None:
        raise Conflict(f"{plugin.name} is already installed; upgrade or uninstall it")
    row = _version_to_install(session, tenant, plugin, version)
    installed_row = Installation(
        tenant_id=tenant.id,
        plugin_id=plugin.id,
        version=row.version,
        config=_sealed_config(config or {}, plugin, settings),
        installed_by=actor,
    )
    session.add(installed_row)
    audit.record(
        session,
        tenant,
        actor=actor,
        action="plugin.installed",
        target=plugin.key,
        details={"version": row.version},
    )
    session.flush()
    return installed_row


def upgrade(
    session: Session, tenant: Tenant, plugin: Plugin, *, actor: str, version: str | None = None
) -> Installation:
    current = installation(session, tenant, plugin)
    if current is None:
        raise NotFound(f"{plugin.name} is not installed")
    row = _version_to_install(session, tenant, plugin, version)
    if Version(row.version) <= Version(current.version):
        raise Conflict(f"{plugin.name} {current.version} is installed; {row.version} is not newer")
    previous = current.version
    current.version = row.version
    audit.record(
        session,
        tenant,
        actor=actor,
        action="plugin.upgraded",
        target=plugin.key,
        details={"from": previous, "to": row.version},
    )
    session.flush()
    return current


def configure(
    session: Session,
    tenant: Tenant,
    plugin: Plugin,
    *,
    actor: str,
    config: dict[str, Any],
    settings: Settings,
) -> Installation:
    current = installation(session, tenant, plugin)
    if current is None:
        raise NotFound(f"{plugin.name} is not installed")
    current.config = _sealed_config(config, plugin, settings)
    audit.record(
        session,
        tenant,
        actor=actor,
        action="plugin.configured",
        target=plugin.key,
        details={"keys": ",".join(sorted(config))},
    )
    session.flush()
    return current


def uninstall(session: Session, tenant: Tenant, plugin: Plugin, *, actor: str) -> None:
    current = installation(session, tenant, plugin)
    if current is None:
        raise NotFound(f"{plugin.name} is not installed")
    session.delete(current)
    audit.record(
        session,
        tenant,
        actor=actor,
        action="plugin.uninstalled",
        target=plugin.key,
        details={"version": current.version},
    )
    session.flush()


def fleet_section(session: Session, tenant: Tenant) -> list[dict[str, Any]]:
    """The tenant's installed plugins, for the operators' tenant detail."""
    return [
        {"id": plugin.key, "tier": str(plugin.tier), "version": row.version}
        for plugin, row in installed(session, tenant)
    ]
