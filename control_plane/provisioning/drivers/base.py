"""What the reconciler needs from a place that runs tenant runtimes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RuntimeSpec:
    """The part of a tenant's spec a driver acts on."""

    tenant_id: str
    slug: str
    organization_name: str
    runtime_release: str
    size_tier: str
    # The names a driver created for this tenant earlier, as stored on the tenant: a driver
    # reuses them rather than derive them again, so a new naming scheme never orphans objects.
    names: Mapping[str, Any] = field(default_factory=dict)
    # The registered release's image reference; empty: the driver's repository, tagged with
    # ``runtime_release``.
    image: str = ""


@dataclass(frozen=True, slots=True)
class ConditionUpdate:
    type: str
    status: bool
    reason: str
    message: str = ""


@dataclass(slots=True)
class RuntimeObservation:
    """What a driver saw: enough to write the tenant's status."""

    database_ready: bool = False
    workload_ready: bool = False
    url: str | None = None
    message: str = ""
    names: dict[str, Any] = field(default_factory=dict)
    # Objects that were deleted, edited or should not exist; the next reconcile repairs them.
    drift: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.database_ready and self.workload_ready


Progress = Callable[[ConditionUpdate], None]


class DriverError(Exception):
    """The runtime cannot be brought up as asked; retrying the same thing will not help."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class TransientDriverError(Exception):
    """Something in the way may clear up by itself (a busy API, a timeout); retry later."""


class RuntimeDriver(Protocol):
    name: str

    def ensure(self, spec: RuntimeSpec, progress: Progress) -> RuntimeObservation:
        """Create or repair what the tenant runs on; wait (bounded) until it is healthy."""
        ...

    def observe(self, spec: RuntimeSpec) -> RuntimeObservation:
        """Look without changing anything."""
        ...

    def suspend(self, spec: RuntimeSpec) -> None:
        """Stop serving, keep the data."""
        ...

    def resume(self, spec: RuntimeSpec, progress: Progress) -> RuntimeObservation: ...

    def destroy(self, spec: RuntimeSpec) -> None:
        """Remove the runtime (workload and address); the data stays for the retention period."""
        ...

    def purge(self, spec: RuntimeSpec) -> None:
        """Drop the tenant's data for good."""
        ...
