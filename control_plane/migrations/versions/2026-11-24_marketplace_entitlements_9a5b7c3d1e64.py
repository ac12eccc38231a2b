"""marketplace: plugins, versions, installations, entitlements

Revision ID: 9a5b7c3d1e64
Revises: 7e4a9c1b3f52
Create Date: 2026-11-24 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "9a5b7c3d1e64"
down_revision: str | None = "7e4a9c1b3f52"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
