"""Errors a catalog client can cause, named as Backstage names them (reference 3.1)."""

from __future__ import annotations

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


class InvalidEntity(ValueError):
    """A descriptor that Backstage would reject; the message says which field and why."""
