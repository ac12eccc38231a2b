"""The Backstage catalog REST API, under /api/catalog."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import Provide
from litestar.params import Parameter
from sqlalchemy.orm import Session

from tenant_runtime.catalog.filters import parse_filter_params
from tenant_runtime.catalog.service import CatalogService


def provide_catalog_service(db_session: Session) -> CatalogService:
    return CatalogService(db_session)


class CatalogController(Controller):
    # Authentication is a later issue; the guard will be added on this controller.
    path = "/api/catalog"
    tags = ["catalog"]
    dependencies = {"catalog_service": Provide(provide_catalog_service, sync_to_thread=False)}

    @get("/entities", operation_id="GetEntities", sync_to_thread=True)
    def list_entities(
        self,
        catalog_service: CatalogService,
        filters: Annotated[list[str] | None, Parameter(query="filter")] = None,
        limit: Annotated[int | None, Parameter(gt=0)] = None,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        """All entities matching the filters, as a bare JSON array."""
        return catalog_service.list_entities(
            filters=parse_filter_params(filters or []), limit=limit, offset=offset
        )
