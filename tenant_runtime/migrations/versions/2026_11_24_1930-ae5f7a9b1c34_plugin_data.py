"""plugin data: ci runs, costs, docs, scorecards

Revision ID: ae5f7a9b1c34
Revises: 9d4e6f8a0b23
Create Date: 2026-11-24 19:30:00

Scorecards are computed from the catalog when asked; they keep no table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ae5f7a9b1c34"
down_revision: str | None = "9d4e6f8a0b23"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plugin_ci_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entity_ref", sa.String(length=255), nullable=False),
        sa.Column("pipeline", sa.String(length=255), nullable=False),
        sa.Column("run_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_ci_runs")),
        sa.UniqueConstraint(
            "entity_ref",
            "pipeline",
            "run_id",
            name=op.f("uq_plugin_ci_runs_entity_ref_pipeline_run_id"),
        ),
    )
    op.create_index(op.f("ix_plugin_ci_runs_entity_ref"), "plugin_ci_runs", ["entity_ref"])
    op.create_table(
        "plugin_cost_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("report", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("entity_ref", sa.String(length=255), nullable=True),
        sa.Column("team", sa.String(length=255), nullable=True),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.Numeric(14, 4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_cost_lines")),
    )
    for column in ("report", "period", "entity_ref", "team"):
        op.create_index(op.f(f"ix_plugin_cost_lines_{column}"), "plugin_cost_lines", [column])
    op.create_table(
        "plugin_techdocs_pages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entity_ref", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_techdocs_pages")),
        sa.UniqueConstraint(
            "entity_ref", "path", name=op.f("uq_plugin_techdocs_pages_entity_ref_path")
        ),
    )
    op.create_index(
        op.f("ix_plugin_techdocs_pages_entity_ref"), "plugin_techdocs_pages", ["entity_ref"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_plugin_techdocs_pages_entity_ref"), table_name="plugin_techdocs_pages")
    op.drop_table("plugin_techdocs_pages")
    for column in ("team", "entity_ref", "period", "report"):
        op.drop_index(op.f(f"ix_plugin_cost_lines_{column}"), table_name="plugin_cost_lines")
    op.drop_table("plugin_cost_lines")
    op.drop_index(op.f("ix_plugin_ci_runs_entity_ref"), table_name="plugin_ci_runs")
    op.drop_table("plugin_ci_runs")
