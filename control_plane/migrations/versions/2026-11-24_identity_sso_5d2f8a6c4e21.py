"""identity: sso, verification, totp

Revision ID: 5d2f8a6c4e21
Revises: 3b1e2c7d9a10
Create Date: 2026-11-24 19:21:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "5d2f8a6c4e21"
down_revision: str | None = "3b1e2c7d9a10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
