"""runtime users, sessions, scim

Revision ID: 9d4e6f8a0b23
Revises: 8c3d5e7f9a12
Create Date: 2026-11-24 19:20:00
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "9d4e6f8a0b23"
down_revision: str | None = "8c3d5e7f9a12"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("user_name", sa.String(320), nullable=True),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("scim_attributes", sa.JSON(), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        _when("last_login_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("user_name", name=op.f("uq_users_user_name")),
    )
    op.create_table(
        "user_groups",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("scim_attributes", sa.JSON(), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_groups")),
        sa.UniqueConstraint("display_name", name=op.f("uq_user_groups_display_name")),
    )
    op.create_table(
        "user_group_members",
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["user_groups.id"],
            name=op.f("fk_user_group_members_group_id_user_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_group_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_user_group_members")),
    )
    op.create_index(
        op.f("ix_user_group_members_user_id"), "user_group_members", ["user_id"], unique=False
    )
    op.create_table(
        "auth_sessions",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("id_token", sa.String(8192), nullable=True),
        _when("created_at"),
        _when("last_seen_at"),
        _when("expires_at"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_auth_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_auth_sessions")),
    )
    op.create_index(op.f("ix_auth_sessions_user_id"), "auth_sessions", ["user_id"], unique=False)
    op.create_table(
        "login_attempts",
        sa.Column("state", sa.String(128), nullable=False),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=True),
        sa.Column("code_verifier", sa.String(128), nullable=True),
        sa.Column("saml_request_id", sa.String(128), nullable=True),
        sa.Column("sso_test_id", sa.String(64), nullable=True),
        sa.Column("config_version", sa.Integer(), nullable=False),
        _when("expires_at"),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_login_attempts")),
    )
    op.create_table(
        "used_handoff_tickets",
        sa.Column("jti", sa.String(64), nullable=False),
        _when("expires_at"),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_used_handoff_tickets")),
    )
    op.create_index(
        op.f("ix_used_handoff_tickets_expires_at"),
        "used_handoff_tickets",
        ["expires_at"],
        unique=False,
    )
    op.create_table(
        "login_days",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_login_days_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_login_days")),
    )
    op.create_index(op.f("ix_login_days_day"), "login_days", ["day"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_login_days_day"), table_name="login_days")
    op.drop_table("login_days")
    op.drop_index(op.f("ix_used_handoff_tickets_expires_at"), table_name="used_handoff_tickets")
    op.drop_table("used_handoff_tickets")
    op.drop_table("login_attempts")
    op.drop_index(op.f("ix_auth_sessions_user_id"), table_name="auth_sessions")
    op.drop_table("auth_sessions")
    op.drop_index(op.f("ix_user_group_members_user_id"), table_name="user_group_members")
    op.drop_table("user_group_members")
    op.drop_table("user_groups")
    op.drop_table("users")
