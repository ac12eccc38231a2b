"""tenant deletion and retention

Revision ID: ca6ad2045c29
Revises: 780d51eec175
Create Date: 2026-11-24 16:00:21.116720
"""

from __future__ import annotations

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "ca6ad2045c29"
down_revision: str | None = "780d51eec175"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "deletion_requested_at",
                advanced_alchemy.types.datetime.DateTimeUTC(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "purge_after",
                advanced_alchemy.types.datetime.DateTimeUTC(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "purged_at",
                advanced_alchemy.types.datetime.DateTimeUTC(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("purged_at")
        batch_op.drop_column("purge_after")
        batch_op.drop_column("deletion_requested_at")
