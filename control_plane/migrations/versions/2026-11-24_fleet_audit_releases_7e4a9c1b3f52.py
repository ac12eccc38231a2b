"""fleet: operators, audit, releases, rollouts

Revision ID: 7e4a9c1b3f52
Revises: 5d2f8a6c4e21
Create Date: 2026-11-24 19:22:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "7e4a9c1b3f52"
down_revision: str | None = "5d2f8a6c4e21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUID = advanced_alchemy.types.guid.GUID
DateTimeUTC = advanced_alchemy.types.datetime.DateTimeUTC
JsonB = advanced_alchemy.types.JsonB

# The audit log is append-only; on PostgreSQL the database itself refuses a change.
_APPEND_ONLY_FUNCTION = """
CREATE FUNCTION audit_entries_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are never changed or deleted';
END;
$$ LANGUAGE plpgsql
"""
_APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_entries_append_only
BEFORE UPDATE OR DELETE ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()
"""


def _audit_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", GUID(length=16), nullable=True),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("details", JsonB, nullable=False),
        *_audit_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entries_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_tenant_id"), ["tenant_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND_ONLY_FUNCTION)
        op.execute(_APPEND_ONLY_TRIGGER)

    op.create_table(
        "operator_tokens",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("operator", sa.String(length=255), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("scopes", JsonB, nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("revoked_at", DateTimeUTC(timezone=True), nullable=True),
        *_audit_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_operator_tokens_token_sha256")),
    )
    op.create_table(
        "runtime_releases",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("image", sa.String(length=255), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("plugin_compatibility", JsonB, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        *_audit_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runtime_releases")),
        sa.UniqueConstraint("version", name=op.f("uq_runtime_releases_version")),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("release_id", GUID(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("waves", JsonB, nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("wave_started_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("ready_deadline_seconds", sa.Float(), nullable=False),
        sa.Column("selector", JsonB, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("finished_at", DateTimeUTC(timezone=True), nullable=True),
        *_audit_columns(),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["runtime_releases.id"],
            name=op.f("fk_rollouts_release_id_runtime_releases"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rollouts_release_id"), ["release_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rollouts_state"), ["state"], unique=False)
    op.create_table(
        "rollout_targets",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("rollout_id", GUID(length=16), nullable=False),
        sa.Column("tenant_id", GUID(length=16), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("previous_release", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=True),
        sa.Column("operation_id", GUID(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        *_audit_columns(),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["rollouts.id"],
            name=op.f("fk_rollout_targets_rollout_id_rollouts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_rollout_targets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_targets")),
        sa.UniqueConstraint("rollout_id", "tenant_id", name=op.f("uq_rollout_targets_rollout_id")),
    )
    with op.batch_alter_table("rollout_targets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rollout_targets_rollout_id"), ["rollout_id"], unique=False
        )

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pinned_release", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "rollout_cohort",
                sa.String(length=16),
                nullable=False,
                server_default=sa.text("'default'"),
            )
        )
        batch_op.add_column(
            sa.Column(
                "region", sa.String(length=32), nullable=False, server_default=sa.text("'default'")
            )
        )
        batch_op.add_column(sa.Column("last_active_at", DateTimeUTC(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_tenants_region"), ["region"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tenants_region"))
        batch_op.drop_column("last_active_at")
        batch_op.drop_column("region")
        batch_op.drop_column("rollout_cohort")
        batch_op.drop_column("pinned_release")
    op.drop_table("rollout_targets")
    op.drop_table("rollouts")
    op.drop_table("runtime_releases")
    op.drop_table("operator_tokens")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entries_append_only ON audit_entries")
        op.execute("DROP FUNCTION audit_entries_append_only()")
    op.drop_table("audit_entries")
