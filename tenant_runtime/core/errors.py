"""Routes each error to the body its audience expects."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.exceptions.responses import create_exception_response

from tenant_runtime.catalog.errors import catalog_error_response

logger = structlog.get_logger(__name__)

CATALOG_API_PREFIX = "/api/catalog"


def handle_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Backstage's error shape under /api/catalog, Litestar's elsewhere."""
    path = request.url.path
    if path == CATALOG_API_PREFIX or path.startswith(CATALOG_API_PREFIX + "/"):
        return catalog_error_response(request, error)
    if not isinstance(error, HTTPException):
        logger.exception("unhandled error", exc_info=error)
    return create_exception_response(request, error)
