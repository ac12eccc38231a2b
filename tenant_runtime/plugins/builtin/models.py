"""What the built-in plugins keep in the tenant database: CI runs, cost lines, doc pages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenant_runtime.core.database import Base


class CiRun(Base):
    """One pipeline run as the CI system last reported it (a later event for it replaces it)."""

    __tablename__ = "plugin_ci_runs"
    __table_args__ = (UniqueConstraint("entity_ref", "pipeline", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity_ref: Mapped[str] = mapped_column(String(255), index=True)
    pipeline: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    branch: Mapped[str] = mapped_column(String(255), default="")
    commit_sha: Mapped[str] = mapped_column(String(64), default="")
    url: Mapped[str] = mapped_column(String(1024), default="")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CostLine(Base):
    """One line of a cost report: an amount for a service in a period, per entity or team."""

    __tablename__ = "plugin_cost_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report: Mapped[str] = mapped_column(String(64), index=True)
    period: Mapped[str] = mapped_column(String(16), index=True)
    entity_ref: Mapped[str | None] = mapped_column(String(255), index=True)
    team: Mapped[str | None] = mapped_column(String(255), index=True)
    service: Mapped[str] = mapped_column(String(255), default="")
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    currency: Mapped[str] = mapped_column(String(3))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DocPage(Base):
    """A Markdown page of an entity's TechDocs, kept for rendering and search."""

    __tablename__ = "plugin_techdocs_pages"
    __table_args__ = (UniqueConstraint("entity_ref", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity_ref: Mapped[str] = mapped_column(String(255), index=True)
    path: Mapped[str] = mapped_column(String(512))
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
