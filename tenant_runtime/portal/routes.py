"""The portal home page: the organization's name and its catalog at a glance."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.response import Template

from tenant_runtime.catalog.routes import provide_catalog_service
from tenant_runtime.catalog.service import CatalogService

HOME_ENTITY_LIMIT = 100


class PortalController(Controller):
    include_in_schema = False
    dependencies = {"catalog_service": Provide(provide_catalog_service, sync_to_thread=False)}

    @get("/", sync_to_thread=True)
    def home(self, state: State, catalog_service: NamedDependency[CatalogService]) -> Template:
        # A glance, not the catalog: a large catalog is browsed page by page at /catalog.
        entities = catalog_service.list_entities(limit=HOME_ENTITY_LIMIT)
        return Template(
            template_name="portal/home.html",
            context={
                "organization_name": state.settings.organization_name,
                "entities": [_row(entity) for entity in entities],
            },
        )


def _row(entity: dict[str, Any]) -> dict[str, str]:
    metadata = entity["metadata"]
    owner = entity.get("spec", {}).get("owner", "")
    return {
        "ref": f"{entity['kind']}:{metadata['namespace']}/{metadata['name']}".lower(),
        "kind": entity["kind"],
        "name": metadata["name"],
        "summary": metadata.get("title") or metadata.get("description") or "",
        "owner": owner if isinstance(owner, str) else "",
    }
