"""runtime users, sessions, scim

Revision ID: 9d4e6f8a0b23
Revises: 8c3d5e7f9a12
Create Date: 2026-11-24 19:20:00
"""

from collections.abc import Sequence

revision: str = "9d4e6f8a0b23"
down_revision: str | None = "8c3d5e7f9a12"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
