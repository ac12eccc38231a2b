"""tenant suspension holds

Revision ID: 1a7c3e5b9d20
Revises: ca6ad2045c29
Create Date: 2026-11-24 19:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "1a7c3e5b9d20"
down_revision: str | None = "ca6ad2045c29"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "suspension_holds",
                advanced_alchemy.types.JsonB,
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
    op.execute("UPDATE tenants SET suspension_holds = '[\"operator\"]' WHERE suspended")


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("suspension_holds")
