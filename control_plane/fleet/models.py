from __future__ import annotations

import datetime as dt
import enum
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.core.database import Base


class Scope(enum.StrEnum):
    READ = "read"
    OPERATE = "operate"
    RELEASE = "release"
    BILLING_ADMIN = "billing-admin"


class OperatorToken(Base):
    """An operator's API token. Only its SHA-256 is kept; the token is shown once."""

    __tablename__ = "operator_tokens"

    name: Mapped[str] = mapped_column(String(100))
    operator: Mapped[str] = mapped_column(String(255))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, so an operator can tell their tokens apart in a listing.
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JsonB, default=list)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class RuntimeRelease(Base):
    """A version of the tenant runtime that tenants can be moved to."""

    __tablename__ = "runtime_releases"

    version: Mapped[str] = mapped_column(String(64), unique=True)
    # The full image reference the Kubernetes driver deploys for this version.
    image: Mapped[str] = mapped_column(String(255))
    notes: Mapped[str] = mapped_column(Text, default="")
    # Plugin package name -> version range the release works with.
    plugin_compatibility: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    created_by: Mapped[str] = mapped_column(String(255))


class RolloutState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    # A wave's health gate failed; its tenants are going back to their previous release.
    ROLLING_BACK = "rolling_back"
    # ... and are back.
    FAILED = "failed"
    ABORTED = "aborted"


class TargetState(enum.StrEnum):
    WAITING = "waiting"
    MOVING = "moving"
    DONE = "done"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"


def _enum(kind: type[enum.StrEnum]) -> Enum:
    return Enum(kind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Rollout(Base):
    """Moving a set of tenants to one release, wave by wave, each wave gated on health."""

    __tablename__ = "rollouts"

    release_id: Mapped[UUID] = mapped_column(
        ForeignKey("runtime_releases.id", ondelete="RESTRICT"), index=True
    )
    state: Mapped[RolloutState] = mapped_column(
        _enum(RolloutState), default=RolloutState.RUNNING, index=True
    )
    # [{"name": "canary", "percent": 1} | {"name": "early", "cohort": "early"}, ...]
    waves: Mapped[list[dict[str, Any]]] = mapped_column(JsonB)
    current_wave: Mapped[int] = mapped_column(default=0)
    wave_started_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # How long a wave's tenants have to become Ready before the gate fails.
    ready_deadline_seconds: Mapped[float] = mapped_column(default=600.0)
    # Which tenants take part: the same filter as the fleet list.
    selector: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    created_by: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text, default="")
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class RolloutTarget(Base):
    """One tenant's place in a rollout: its wave, where it came from, how far it got."""

    __tablename__ = "rollout_targets"
    __table_args__ = (UniqueConstraint("rollout_id", "tenant_id"),)

    rollout_id: Mapped[UUID] = mapped_column(
        ForeignKey("rollouts.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    wave: Mapped[int] = mapped_column()
    previous_release: Mapped[str] = mapped_column(String(64))
    state: Mapped[TargetState] = mapped_column(_enum(TargetState), default=TargetState.WAITING)
    # The tenant generation that carries the move (or the rollback): done when observed.
    generation: Mapped[int | None] = mapped_column()
    operation_id: Mapped[UUID | None] = mapped_column()
    detail: Mapped[str] = mapped_column(Text, default="")
