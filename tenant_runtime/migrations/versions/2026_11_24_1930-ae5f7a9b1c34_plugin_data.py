"""plugin data: ci runs, costs, docs, scorecards

Revision ID: ae5f7a9b1c34
Revises: 9d4e6f8a0b23
Create Date: 2026-11-24 19:30:00
"""

from collections.abc import Sequence

revision: str = "ae5f7a9b1c34"
down_revision: str | None = "9d4e6f8a0b23"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
