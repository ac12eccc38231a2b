from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.core.database import Base
from control_plane.tenants.lifecycle import TenantState

_state_enum = Enum(
    TenantState, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
)


class Tenant(Base):
    """An organization's portal: desired spec, observed status, lifecycle state.

    Every change to the spec bumps ``generation``; the reconciler writes
    ``observed_generation`` once the world matches that generation.
    """

    __tablename__ = "tenants"

    organization_id: Mapped[UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), unique=True
    )
    slug: Mapped[str] = mapped_column(String(63), unique=True)

    # spec
    plan: Mapped[str] = mapped_column(String(32))
    runtime_release: Mapped[str] = mapped_column(String(64))
    size_tier: Mapped[str] = mapped_column(String(16), default="small")
    suspended: Mapped[bool] = mapped_column(default=False)
    # Who holds the portal suspended ("billing", "operator"); it runs again only when none do,
    # so a payment never lifts an operator's suspension.
    suspension_holds: Mapped[list[str]] = mapped_column(JsonB, default=list)
    deletion_requested_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    generation: Mapped[int] = mapped_column(default=1)
    # Fleet operations: a pinned tenant stays on its release through rollouts; the cohort
    # puts it in a rollout's early or late waves.
    pinned_release: Mapped[str | None] = mapped_column(String(64))
    rollout_cohort: Mapped[str] = mapped_column(String(16), default="default")
    region: Mapped[str] = mapped_column(String(32), default="default", index=True)
    last_active_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    # status
    state: Mapped[TenantState] = mapped_column(_state_enum, default=TenantState.PENDING, index=True)
    observed_generation: Mapped[int] = mapped_column(default=0)
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    runtime_url: Mapped[str | None] = mapped_column(String(255))
    runtime_names: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    ready_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # After deletion the tenant's data is kept until purge_after, then dropped (purged_at).
    purge_after: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    def condition(self, kind: str) -> dict[str, Any] | None:
        return next((c for c in self.conditions if c["type"] == kind), None)


class TenantEvent(Base):
    """One row per lifecycle transition or notable step: who, when, why."""

    __tablename__ = "tenant_events"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[TenantState | None] = mapped_column(_state_enum)
    to_state: Mapped[TenantState] = mapped_column(_state_enum)
    reason: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(255))
    operation_id: Mapped[UUID | None] = mapped_column()
