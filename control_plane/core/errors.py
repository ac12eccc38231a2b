"""Domain errors carry the HTTP status a user should see."""

from __future__ import annotations


class DomainError(Exception):
    """An error a user can cause or act on; ``message`` says what to do."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    status_code = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class NotAllowed(DomainError):
    status_code = 403


class ServiceUnavailable(DomainError):
    status_code = 503
