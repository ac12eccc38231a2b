"""The Backstage catalog REST API, under /api/catalog."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from litestar import Controller, MediaType, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import QueryParameter
from sqlalchemy.orm import Session

from tenant_runtime.catalog.errors import ERROR_NAMES, CatalogError
from tenant_runtime.catalog.filters import parse_filter_params
from tenant_runtime.catalog.service import CatalogService

logger = structlog.get_logger(__name__)


def provide_catalog_service(db_session: NamedDependency[Session]) -> CatalogService:
    return CatalogService(db_session)


class CatalogController(Controller):
    # Authentication is a later issue; the guard will be added on this controller.
    path = "/api/catalog"
    tags = ["catalog"]
    dependencies = {"catalog_service": Provide(provide_catalog_service, sync_to_thread=False)}

    @get("/entities", operation_id="GetEntities", sync_to_thread=True)
    def list_entities(
        self,
        catalog_service: NamedDependency[CatalogService],
        filters: Annotated[list[str] | None, QueryParameter(name="filter")] = None,
        limit: Annotated[int | None, QueryParameter(gt=0)] = None,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        """All entities matching the filters, as a bare JSON array."""
        return catalog_service.list_entities(
            filters=parse_filter_params(filters or []), limit=limit, offset=offset
        )


def catalog_error_response(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Render any error under /api/catalog in the shape `@backstage/catalog-client` reads."""
    if isinstance(error, CatalogError):
        status_code, name, message = error.status_code, error.name, str(error)
    elif isinstance(error, HTTPException):
        status_code = error.status_code
        name = ERROR_NAMES.get(status_code, "Error")
        message = _describe(error)
    else:
        logger.exception("unhandled error in the catalog API", exc_info=error)
        status_code, name, message = 500, "Error", "Internal server error"
    url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Response(
        {
            "error": {"name": name, "message": message},
            "request": {"method": request.method, "url": url},
            "response": {"statusCode": status_code},
        },
        status_code=status_code,
        media_type=MediaType.JSON,
    )


def _describe(error: HTTPException) -> str:
    if isinstance(error, ValidationException) and isinstance(error.extra, list):
        problems = [
            f"{item.get('key')}: {item.get('message')}"
            for item in error.extra
            if isinstance(item, dict)
        ]
        if problems:
            return "Invalid query: " + "; ".join(problems)
    return error.detail
