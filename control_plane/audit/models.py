from __future__ import annotations

from typing import Any
from uuid import UUID

from advanced_alchemy.types import JsonB
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.core.database import Base


class AuditEntry(Base):
    """One action by an operator, a tenant admin or the system. Rows are never changed.

    ``tenant_id`` is not a foreign key: the record of what was done to a tenant outlives
    whatever happens to the tenant's own rows.
    """

    __tablename__ = "audit_entries"

    actor: Mapped[str] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[UUID | None] = mapped_column(index=True)
    target: Mapped[str] = mapped_column(String(255), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
