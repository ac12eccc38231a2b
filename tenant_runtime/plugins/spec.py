"""What a plugin declares: its identity, tier, the runtime releases it supports, its config
schema and what it contributes (routes, entity-page tabs and cards, catalog processors, jobs).

A plugin is a Python package that exposes one ``PluginSpec`` under the entry-point group
``backlot.plugins``. The runtime image ships every plugin; entitlements decide which are live.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
from litestar import Litestar
from sqlalchemy.orm import Session, sessionmaker

from tenant_runtime.core.settings import RuntimeSettings

Tier = Literal["free", "premium"]
Entity = dict[str, Any]


@dataclass(frozen=True)
class PluginContext:
    """What an active plugin may use: its validated config, the tenant database, its settings."""

    plugin_id: str
    config: Any
    settings: RuntimeSettings
    sessions: sessionmaker[Session]

    @property
    def data_dir(self) -> Path:
        path = self.settings.data_dir / "plugins" / self.plugin_id
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(frozen=True)
class EntityTab:
    """A tab on an entity's page; ``href`` is served by the plugin under /plugins/<id>/."""

    plugin_id: str
    title: str
    href: str


@dataclass(frozen=True)
class EntityCard:
    """A small summary shown on an entity's overview; plain text, rendered escaped."""

    plugin_id: str
    title: str
    lines: Sequence[str]
    href: str | None = None


@dataclass(frozen=True)
class Job:
    """A background job the host runs every ``interval_seconds`` while the plugin is active."""

    name: str
    interval_seconds: float
    run: Callable[[PluginContext], None]


class NoConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The schema of a plugin that takes no configuration."""


@dataclass(frozen=True)
class PluginSpec:
    id: str
    name: str
    version: str
    tier: Tier
    description: str
    # PEP 440 specifier of the runtime releases this version runs on, e.g. ">=0.1,<1".
    runtime_releases: str
    # Routes: a Litestar app whose "/x" is served at /plugins/<id>/x and whose "/api/x" at
    # /api/plugins/<id>/x. Built when the plugin is activated, dropped when deactivated.
    build_app: Callable[[PluginContext], Litestar]
    config_schema: type[msgspec.Struct] = NoConfig
    entity_tabs: Callable[[PluginContext, Entity], list[EntityTab]] | None = None
    entity_cards: Callable[[PluginContext, Entity], list[EntityCard]] | None = None
    catalog_processors: Sequence[Callable[[Entity], Entity]] = field(default_factory=tuple)
    jobs: Sequence[Job] = field(default_factory=tuple)
    # Paths of the plugin's app that callers outside the portal reach without a portal
    # credential, because the route checks its own (a webhook's signature). Every other
    # path needs a signed-in user or a service token, and a member's role to change data.
    public_paths: frozenset[str] = frozenset()

    def validate_config(self, raw: dict[str, Any]) -> Any:
        """The config as the plugin's schema type; raises ``msgspec.ValidationError``."""
        return msgspec.convert(raw, self.config_schema)
