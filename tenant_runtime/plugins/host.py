"""The plugin host: activates exactly the installed plugins the entitlements allow, live.

The control plane publishes the ``plugins`` section of the runtime's config document:
``{"entitlements": <signed token>, "installed": [{"id", "version", "config"}]}``. Each change
(heard through the uplink) and a periodic tick reconcile the running set: a plugin becomes
active by building its Litestar app and goes away by dropping it. Nothing restarts; the
routes live behind one mounted dispatcher under ``/plugins/<id>/`` and ``/api/plugins/<id>/``.

Degraded mode, when the control plane is unreachable or its token cannot be verified:
the last valid token keeps counting until it expires plus ``entitlement_grace_seconds``;
after that premium plugins stop and free plugins keep running. A token that fails
verification never replaces a valid one.
"""

from __future__ import annotations

import importlib.metadata
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import structlog
from litestar import Litestar
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from sqlalchemy.orm import Session, sessionmaker

from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.plugins.entitlements import (
    EntitlementRefused,
    Entitlements,
    EntitlementVerifier,
)
from tenant_runtime.plugins.spec import Entity, EntityCard, EntityTab, PluginContext, PluginSpec

log = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = "backlot.plugins"

Mode = Literal["standalone", "entitled", "grace", "degraded"]
Discovery = Callable[[], dict[str, Any]]


def discover_plugins() -> dict[str, PluginSpec]:
    """Every plugin this runtime ships, from the ``backlot.plugins`` entry points."""
    found: dict[str, PluginSpec] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = entry_point.load()
        except Exception:
            # A broken plugin package must not take the portal down with it.
            log.exception("plugins.load_failed", entry_point=entry_point.name)
            continue
        if not isinstance(spec, PluginSpec):
            log.error("plugins.not_a_plugin", entry_point=entry_point.name)
            continue
        found[spec.id] = spec
    return found


def runtime_release() -> str:
    return importlib.metadata.version("backlot")


@dataclass
class ActivePlugin:
    spec: PluginSpec
    context: PluginContext
    app: Litestar
    version: str
    raw_config: dict[str, Any]
    last_run: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PluginStatus:
    id: str
    name: str
    tier: str
    version: str
    state: Literal["active", "refused"]
    reason: str = ""


class PluginHost:
    def __init__(
        self,
        settings: RuntimeSettings,
        sessions: sessionmaker[Session],
        *,
        plugins: dict[str, PluginSpec] | None = None,
        verifier: EntitlementVerifier | None = None,
        discovery: Discovery | None = None,
        release: str | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.available = discover_plugins() if plugins is None else plugins
        self.verifier = verifier or EntitlementVerifier(settings.tenant_id)
        self._discovery = discovery or dict
        self.release = release or runtime_release()
        self._lock = threading.RLock()
        self._installed: list[dict[str, Any]] = []
        self._entitlements: Entitlements | None = None
        self._active: dict[str, ActivePlugin] = {}
        self._status: dict[str, PluginStatus] = {}
        self.mode: Mode = "standalone"
        self.last_refusal: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the control plane says -----------------------------------------------------

    def on_section(self, section: Any) -> None:
        """The uplink's callback for the ``plugins`` section (None when standalone)."""
        if not isinstance(section, dict):
            with self._lock:
                self._installed = []
            self.reconcile()
            return
        token = section.get("entitlements")
        if isinstance(token, str) and token:
            self.accept_token(token)
        installed = section.get("installed")
        with self._lock:
            self._installed = [i for i in installed or [] if isinstance(i, dict) and "id" in i]
        self.reconcile()

    def accept_token(self, token: str) -> bool:
        document = self._discovery()
        try:
            entitlements = self.verifier.verify(
                token,
                issuer=str(document.get("issuer", "")),
                jwks_uri=str(document.get("jwks_uri", "")),
            )
        except EntitlementRefused as exc:
            # Keep the last valid token: a forged or broken one must not widen or narrow access.
            log.warning("plugins.entitlements_refused", reason=str(exc))
            with self._lock:
                self.last_refusal = str(exc)
            return False
        with self._lock:
            self._entitlements = entitlements
            self.last_refusal = None
        log.info(
            "plugins.entitlements_accepted",
            plan=entitlements.plan,
            plugins=sorted(entitlements.plugins),
            expires_at=entitlements.expires_at,
        )
        return True

    # -- reconciling the running set -----------------------------------------------------

    def _allowed(self, now: float) -> tuple[Mode, set[str]]:
        entitlements = self._entitlements
        grace = self.settings.entitlement_grace_seconds
        if entitlements is not None and now < entitlements.expires_at + grace:
            mode: Mode = "entitled" if now < entitlements.expires_at else "grace"
            return mode, set(entitlements.plugins)
        free = {plugin_id for plugin_id, spec in self.available.items() if spec.tier == "free"}
        return "degraded", free

    def _refusal(self, spec: PluginSpec, version: str, allowed: set[str]) -> str | None:
        if spec.id not in allowed:
            return "this portal is not entitled to it"
        try:
            shipped, wanted = Version(spec.version), Version(version)
        except InvalidVersion:
            return f"version {version!r} is not a valid version"
        if shipped.major != wanted.major:
            return f"this runtime ships version {spec.version}, not {version}"
        try:
            supported = SpecifierSet(spec.runtime_releases)
        except InvalidSpecifier:
            return f"it declares an invalid runtime range {spec.runtime_releases!r}"
        if not supported.contains(self.release, prereleases=True):
            return f"it supports runtime releases {spec.runtime_releases}, not {self.release}"
        return None

    def reconcile(self, now: float | None = None) -> None:
        """Bring the active plugins to what is installed and allowed."""
        current = time.time() if now is None else now
        with self._lock:
            mode, allowed = self._allowed(current)
            if not self._installed and self._entitlements is None:
                mode = "standalone" if self.mode == "standalone" else mode
            self.mode = mode
            wanted: dict[str, tuple[PluginSpec, str, dict[str, Any], Any]] = {}
            status: dict[str, PluginStatus] = {}
            for item in self._installed:
                plugin_id = str(item["id"])
                version = str(item.get("version", ""))
                raw_config = item.get("config") or {}
                spec = self.available.get(plugin_id)
                if spec is None:
                    missing = "this runtime does not ship it"
                    status[plugin_id] = PluginStatus(
                        plugin_id, plugin_id, "", version, "refused", missing
                    )
                    continue
                reason = self._refusal(spec, version, allowed)
                config: Any = None
                if reason is None:
                    try:
                        config = spec.validate_config(raw_config)
                    except msgspec.ValidationError as exc:
                        reason = f"its config is not valid: {exc}"
                if reason is not None:
                    status[plugin_id] = PluginStatus(
                        plugin_id, spec.name, spec.tier, version, "refused", reason
                    )
                    continue
                wanted[plugin_id] = (spec, version, raw_config, config)
                status[plugin_id] = PluginStatus(plugin_id, spec.name, spec.tier, version, "active")

            for plugin_id in list(self._active):
                running = self._active[plugin_id]
                target = wanted.get(plugin_id)
                unchanged = target is not None and (target[1], target[2]) == (
                    running.version,
                    running.raw_config,
                )
                if not unchanged:
                    del self._active[plugin_id]
                    log.info("plugins.deactivated", plugin=plugin_id, version=running.version)
            for plugin_id, (spec, version, raw_config, config) in wanted.items():
                if plugin_id in self._active:
                    continue
                try:
                    self._active[plugin_id] = self._activate(spec, version, raw_config, config)
                except Exception as exc:
                    log.exception("plugins.activation_failed", plugin=plugin_id)
                    status[plugin_id] = PluginStatus(
                        plugin_id, spec.name, spec.tier, version, "refused", f"it failed: {exc}"
                    )
                    continue
                log.info("plugins.activated", plugin=plugin_id, version=version, mode=mode)
            self._status = status

    def _activate(
        self, spec: PluginSpec, version: str, raw_config: dict[str, Any], config: Any
    ) -> ActivePlugin:
        context = PluginContext(
            plugin_id=spec.id,
            config=config,
            settings=self.settings,
            sessions=self.sessions,
        )
        return ActivePlugin(spec, context, spec.build_app(context), version, raw_config)

    # -- what the rest of the runtime reads ----------------------------------------------

    def app_for(self, plugin_id: str) -> Litestar | None:
        active = self.active_plugin(plugin_id)
        return active.app if active is not None else None

    def active_plugin(self, plugin_id: str) -> ActivePlugin | None:
        with self._lock:
            return self._active.get(plugin_id)

    def active(self) -> list[ActivePlugin]:
        with self._lock:
            return list(self._active.values())

    def statuses(self) -> list[PluginStatus]:
        with self._lock:
            return sorted(self._status.values(), key=lambda s: s.id)

    @property
    def entitlements(self) -> Entitlements | None:
        return self._entitlements

    def entity_tabs(self, entity: Entity) -> list[EntityTab]:
        tabs: list[EntityTab] = []
        for plugin in self.active():
            if plugin.spec.entity_tabs is not None:
                tabs.extend(plugin.spec.entity_tabs(plugin.context, entity))
        return tabs

    def entity_cards(self, entity: Entity) -> list[EntityCard]:
        cards: list[EntityCard] = []
        for plugin in self.active():
            if plugin.spec.entity_cards is not None:
                cards.extend(plugin.spec.entity_cards(plugin.context, entity))
        return cards

    def catalog_processors(self) -> list[Callable[[Entity], Entity]]:
        return [p for plugin in self.active() for p in plugin.spec.catalog_processors]

    # -- the tick: expiry and background jobs --------------------------------------------

    def tick(self, now: float | None = None) -> None:
        current = time.time() if now is None else now
        self.reconcile(current)
        for plugin in self.active():
            for job in plugin.spec.jobs:
                if current - plugin.last_run.get(job.name, 0.0) < job.interval_seconds:
                    continue
                plugin.last_run[job.name] = current
                try:
                    job.run(plugin.context)
                except Exception:
                    # A failing job is the plugin's problem; the host and other plugins go on.
                    log.exception("plugins.job_failed", plugin=plugin.spec.id, job=job.name)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="plugin-host", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.plugin_tick_seconds):
            self.tick()


# The host of this process, for the catalog's entity page (set when the app is built).
_current: PluginHost | None = None


def install(host: PluginHost | None) -> None:
    global _current  # noqa: PLW0603 - one host per runtime process, set by create_app
    _current = host


def entity_tabs(entity: Entity) -> list[EntityTab]:
    """Tabs the active plugins add to ``entity``'s page (none when no host runs)."""
    return _current.entity_tabs(entity) if _current is not None else []


def entity_cards(entity: Entity) -> list[EntityCard]:
    """Cards the active plugins add to ``entity``'s overview."""
    return _current.entity_cards(entity) if _current is not None else []


def catalog_processors() -> Sequence[Callable[[Entity], Entity]]:
    return _current.catalog_processors() if _current is not None else []
