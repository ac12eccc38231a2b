"""fleet: operators, audit, releases, rollouts

Revision ID: 7e4a9c1b3f52
Revises: 5d2f8a6c4e21
Create Date: 2026-11-24 19:22:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "7e4a9c1b3f52"
down_revision: str | None = "5d2f8a6c4e21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
