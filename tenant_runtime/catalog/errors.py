"""Catalog errors and the Backstage error body the catalog client parses (reference 3.1)."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

logger = structlog.get_logger(__name__)

# Backstage's error names for the statuses it maps (MiddlewareFactory `getStatusCode`).
ERROR_NAMES = {
    400: "InputError",
    401: "AuthenticationError",
    403: "NotAllowedError",
    404: "NotFoundError",
    409: "ConflictError",
    501: "NotImplementedError",
    503: "ServiceUnavailableError",
}


class CatalogError(Exception):
    """An error a catalog client can cause; its name and status follow Backstage's."""

    status_code = 500

    @property
    def name(self) -> str:
        return ERROR_NAMES.get(self.status_code, "Error")


class CatalogInputError(CatalogError):
    status_code = 400


class EntityConflict(CatalogError):
    status_code = 409


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
