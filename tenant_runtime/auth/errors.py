"""Login refusals: a clear message for the person, a precise log line for the admin."""

from __future__ import annotations

from typing import Any


class AuthError(Exception):
    """A refused login or request; `log_event` and `log_fields` never carry a secret."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 401,
        log_event: str,
        **log_fields: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.log_event = log_event
        self.log_fields = log_fields
