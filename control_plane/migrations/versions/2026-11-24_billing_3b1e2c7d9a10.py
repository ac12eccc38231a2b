"""billing: plans, subscriptions, webhook inbox, seats

Revision ID: 3b1e2c7d9a10
Revises: 1a7c3e5b9d20
Create Date: 2026-11-24 19:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "3b1e2c7d9a10"
down_revision: str | None = "1a7c3e5b9d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
