from __future__ import annotations

import datetime as dt
import enum
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.core.database import Base


class OperationState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # A newer generation's operation took over, or a lost worker's lease ran out.
    SUPERSEDED = "superseded"


class Operation(Base):
    """One attempt to bring a tenant to one generation of its spec.

    A worker claims it with a compare-and-set and holds a lease; a worker killed at
    any line leaves a lease that runs out, and the resync hands the work on.
    """

    __tablename__ = "operations"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    generation: Mapped[int] = mapped_column()
    state: Mapped[OperationState] = mapped_column(
        Enum(
            OperationState,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=OperationState.PENDING,
        index=True,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
