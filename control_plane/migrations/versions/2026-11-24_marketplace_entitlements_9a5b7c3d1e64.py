"""marketplace: plugins, versions, installations, entitlements

Revision ID: 9a5b7c3d1e64
Revises: 7e4a9c1b3f52
Create Date: 2026-11-24 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "9a5b7c3d1e64"
down_revision: str | None = "7e4a9c1b3f52"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "marketplace_plugins",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("publisher", sa.String(length=100), nullable=False),
        sa.Column(
            "tier",
            sa.Enum("free", "premium", name="marketplace_tier", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("price_lookup_key", sa.String(length=100), nullable=True),
        sa.Column("included_in_plans", advanced_alchemy.types.JsonB, nullable=False),
        sa.Column("generated_secrets", advanced_alchemy.types.JsonB, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketplace_plugins")),
        sa.UniqueConstraint("key", name=op.f("uq_marketplace_plugins_key")),
    )
    op.create_table(
        "marketplace_plugin_versions",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("plugin_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("runtime_releases", sa.String(length=100), nullable=False),
        sa.Column("permissions", advanced_alchemy.types.JsonB, nullable=False),
        sa.Column("changelog", sa.Text(), nullable=False),
        sa.Column(
            "deprecated_at",
            advanced_alchemy.types.datetime.DateTimeUTC(timezone=True),
            nullable=True,
        ),
        sa.Column("deprecation_reason", sa.Text(), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["marketplace_plugins.id"],
            name=op.f("fk_marketplace_plugin_versions_plugin_id_marketplace_plugins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketplace_plugin_versions")),
        sa.UniqueConstraint(
            "plugin_id", "version", name=op.f("uq_marketplace_plugin_versions_plugin_id")
        ),
    )
    with op.batch_alter_table("marketplace_plugin_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_marketplace_plugin_versions_plugin_id"), ["plugin_id"], unique=False
        )

    op.create_table(
        "marketplace_addons",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("tenant_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("plugin_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "active",
                "canceling",
                "canceled",
                name="marketplace_addon_state",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("subscription_item_id", sa.String(length=255), nullable=True),
        sa.Column(
            "current_period_end",
            advanced_alchemy.types.datetime.DateTimeUTC(timezone=True),
            nullable=True,
        ),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["marketplace_plugins.id"],
            name=op.f("fk_marketplace_addons_plugin_id_marketplace_plugins"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_marketplace_addons_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketplace_addons")),
        sa.UniqueConstraint("tenant_id", "plugin_id", name=op.f("uq_marketplace_addons_tenant_id")),
    )
    with op.batch_alter_table("marketplace_addons", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_marketplace_addons_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "marketplace_entitlement_tokens",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("tenant_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column(
            "issued_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_marketplace_entitlement_tokens_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketplace_entitlement_tokens")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_marketplace_entitlement_tokens_tenant_id")),
    )
    op.create_table(
        "marketplace_installations",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("tenant_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("plugin_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("config", advanced_alchemy.types.JsonB, nullable=False),
        sa.Column("installed_by", sa.String(length=255), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["marketplace_plugins.id"],
            name=op.f("fk_marketplace_installations_plugin_id_marketplace_plugins"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_marketplace_installations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketplace_installations")),
        sa.UniqueConstraint(
            "tenant_id", "plugin_id", name=op.f("uq_marketplace_installations_tenant_id")
        ),
    )
    with op.batch_alter_table("marketplace_installations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_marketplace_installations_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("marketplace_installations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_marketplace_installations_tenant_id"))

    op.drop_table("marketplace_installations")
    op.drop_table("marketplace_entitlement_tokens")
    with op.batch_alter_table("marketplace_addons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_marketplace_addons_tenant_id"))

    op.drop_table("marketplace_addons")
    with op.batch_alter_table("marketplace_plugin_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_marketplace_plugin_versions_plugin_id"))

    op.drop_table("marketplace_plugin_versions")
    op.drop_table("marketplace_plugins")
