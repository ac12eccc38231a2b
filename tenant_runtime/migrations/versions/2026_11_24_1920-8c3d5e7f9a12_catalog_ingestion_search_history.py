"""catalog: ingestion, search, history

Revision ID: 8c3d5e7f9a12
Revises: 6b1f0c2a9d41
Create Date: 2026-11-24 19:20:00
"""

from collections.abc import Sequence

revision: str = "8c3d5e7f9a12"
down_revision: str | None = "6b1f0c2a9d41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
