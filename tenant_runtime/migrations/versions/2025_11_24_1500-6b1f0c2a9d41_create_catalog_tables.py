"""create catalog tables

Revision ID: 6b1f0c2a9d41
Revises:
Create Date: 2025-11-24 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "6b1f0c2a9d41"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("entity_ref", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=63), nullable=False),
        sa.Column("namespace", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("body", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uid", name=op.f("pk_entities")),
        sa.UniqueConstraint("entity_ref", name=op.f("uq_entities_entity_ref")),
    )
    op.create_index(
        op.f("ix_entities_kind_namespace_name"),
        "entities",
        ["kind", "namespace", "name"],
    )
    op.create_table(
        "relations",
        sa.Column("source_ref", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=63), nullable=False),
        sa.Column("target_ref", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("source_ref", "type", "target_ref", name=op.f("pk_relations")),
    )
    op.create_index(op.f("ix_relations_type_target_ref"), "relations", ["type", "target_ref"])


def downgrade() -> None:
    op.drop_index(op.f("ix_relations_type_target_ref"), table_name="relations")
    op.drop_table("relations")
    op.drop_index(op.f("ix_entities_kind_namespace_name"), table_name="entities")
    op.drop_table("entities")
