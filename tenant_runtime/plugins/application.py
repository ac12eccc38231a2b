"""What every plugin's Litestar app shares: the tenant database, templates, entity lookup."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig
from litestar.types import ControllerRouterHandler
from sqlalchemy.orm import Session

from tenant_runtime.catalog.refs import InvalidEntityRef, parse_entity_ref
from tenant_runtime.catalog.service import CatalogService
from tenant_runtime.plugins.spec import Entity, PluginContext

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def _db_session(state: State) -> Iterator[Session]:
    """One session per request; the request is the unit of work, so it commits here."""
    context: PluginContext = state.plugin
    with context.sessions() as session:
        try:
            yield session
        except Exception:
            session.rollback()
            raise
        session.commit()


def _plugin(state: State) -> PluginContext:
    context: PluginContext = state.plugin
    return context


def build_plugin_app(
    context: PluginContext, route_handlers: Sequence[ControllerRouterHandler]
) -> Litestar:
    """A plugin's app: ``db_session`` and ``plugin`` (its context) are injectable."""
    return Litestar(
        route_handlers=list(route_handlers),
        state=State({"plugin": context, "settings": context.settings}),
        dependencies={
            "db_session": Provide(_db_session),
            "plugin": Provide(_plugin, sync_to_thread=False),
        },
        template_config=TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine),
        logging_config=None,
        openapi_config=None,
    )


def entity_ref_of(entity: Entity) -> str:
    metadata = entity["metadata"]
    return f"{entity['kind']}:{metadata.get('namespace', 'default')}/{metadata['name']}".lower()


def entity_path(entity: Entity) -> str:
    """``kind/namespace/name``: how plugin pages address an entity."""
    metadata = entity["metadata"]
    return f"{entity['kind']}/{metadata.get('namespace', 'default')}/{metadata['name']}".lower()


def find_entity(session: Session, ref: str) -> Entity | None:
    """The catalog entity named by ``ref``, read through the catalog's service."""
    try:
        parsed = parse_entity_ref(ref, default_kind="component")
    except InvalidEntityRef:
        return None
    return CatalogService(session).entity_by_ref(f"{parsed.kind}:{parsed.namespace}/{parsed.name}")


def all_entities(session: Session, kind: str | None = None) -> list[Entity]:
    return CatalogService(session).list_entities(predicate={"kind": kind} if kind else None)


def annotation(entity: Entity, key: str) -> Any:
    return (entity.get("metadata", {}).get("annotations") or {}).get(key)
