from __future__ import annotations

import datetime as dt
from typing import Any

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.core.database import Base


class OutboxMessage(Base):
    """A task to hand to the broker; its id is the Celery task id, so consumers can dedupe."""

    __tablename__ = "outbox_messages"

    task_name: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
