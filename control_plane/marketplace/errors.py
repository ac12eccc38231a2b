from __future__ import annotations

from control_plane.core.errors import Conflict, DomainError, NotAllowed


class Incompatible(Conflict):
    """The version cannot run on this tenant's portal; the message says why."""


class NotEntitled(NotAllowed):
    """A premium plugin the tenant has neither in its plan nor bought."""


class PurchasesUnavailable(DomainError):
    status_code = 503
