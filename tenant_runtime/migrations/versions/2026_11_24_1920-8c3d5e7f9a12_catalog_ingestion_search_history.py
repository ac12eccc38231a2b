"""catalog: ingestion, search, history

Revision ID: 8c3d5e7f9a12
Revises: 6b1f0c2a9d41
Create Date: 2026-11-24 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "8c3d5e7f9a12"
down_revision: str | None = "6b1f0c2a9d41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("entities") as batch:
        batch.add_column(sa.Column("location_key", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("parent_ref", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("status_items", JSON_DOCUMENT, nullable=True))
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=True))
        batch.create_index(batch.f("ix_entities_location_key"), ["location_key"])
        batch.create_index(batch.f("ix_entities_parent_ref"), ["parent_ref"])
        batch.create_index(
            batch.f("ix_entities_kind_entity_ref_uid"), ["kind", "entity_ref", "uid"]
        )

    # Relations remember which entity implied them; existing rows are attributed to their
    # source, which is what the first revision's seeding implied.
    with op.batch_alter_table("relations") as batch:
        batch.add_column(sa.Column("origin_ref", sa.String(length=255), nullable=True))
    op.execute("UPDATE relations SET origin_ref = source_ref")
    with op.batch_alter_table("relations") as batch:
        batch.alter_column("origin_ref", existing_type=sa.String(length=255), nullable=False)
        batch.drop_constraint("pk_relations", type_="primary")
        batch.create_primary_key("pk_relations", ["origin_ref", "source_ref", "type", "target_ref"])
        batch.create_index(batch.f("ix_relations_source_ref"), ["source_ref"])

    op.create_table(
        "entity_search",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("entity_uid", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=True),
        sa.Column("original_value", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["entity_uid"],
            ["entities.uid"],
            name=op.f("fk_entity_search_entity_uid_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_search")),
    )
    op.create_index(
        op.f("ix_entity_search_key_value_entity_uid"),
        "entity_search",
        ["key", "value", "entity_uid"],
        postgresql_include=["original_value"],
    )
    op.create_index(op.f("ix_entity_search_entity_uid"), "entity_search", ["entity_uid"])

    op.create_table(
        "locations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=2048), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_refresh_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("type", "target", name=op.f("uq_locations_type_target")),
    )
    op.create_index(op.f("ix_locations_next_refresh_at"), "locations", ["next_refresh_at"])

    op.create_table(
        "entity_history",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("entity_ref", sa.String(length=255), nullable=False),
        sa.Column("entity_uid", sa.String(length=36), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("location_key", sa.String(length=2048), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("diff", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_history")),
    )
    op.create_index(op.f("ix_entity_history_entity_ref_id"), "entity_history", ["entity_ref", "id"])

    if op.get_bind().dialect.name == "postgresql":
        # Full-text search runs in the database: a GIN index over the entity's text.
        # (The embedded SQLite default searches with LIKE instead; see catalog/search.py.)
        op.execute(
            "CREATE INDEX ix_entities_search_text_fts ON entities "
            "USING gin (to_tsvector('simple', coalesce(search_text, '')))"
        )
        # Filters match (key, value) pairs, and a value's frequency depends on its key:
        # per-column statistics underestimate `spec.type=service` a hundredfold and the
        # planner then loops over thousands of rows. A multi-column MCV list fixes that.
        op.execute(
            "CREATE STATISTICS st_entity_search_key_value (dependencies, mcv) "
            "ON key, value FROM entity_search"
        )
        op.execute("ALTER TABLE entity_search ALTER COLUMN key SET STATISTICS 1000")
        op.execute("ALTER TABLE entity_search ALTER COLUMN value SET STATISTICS 1000")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS st_entity_search_key_value")
        op.execute("DROP INDEX ix_entities_search_text_fts")
    op.drop_index(op.f("ix_entity_history_entity_ref_id"), table_name="entity_history")
    op.drop_table("entity_history")
    op.drop_index(op.f("ix_locations_next_refresh_at"), table_name="locations")
    op.drop_table("locations")
    op.drop_index(op.f("ix_entity_search_entity_uid"), table_name="entity_search")
    op.drop_index(op.f("ix_entity_search_key_value_entity_uid"), table_name="entity_search")
    op.drop_table("entity_search")

    # Rows that differ only by origin collapse into one, as the first revision stored them.
    op.execute(
        "DELETE FROM relations WHERE origin_ref NOT IN ("
        "SELECT min(origin_ref) FROM relations AS other "
        "WHERE other.source_ref = relations.source_ref AND other.type = relations.type "
        "AND other.target_ref = relations.target_ref)"
    )
    with op.batch_alter_table("relations") as batch:
        batch.drop_index(batch.f("ix_relations_source_ref"))
        batch.drop_constraint("pk_relations", type_="primary")
        batch.create_primary_key("pk_relations", ["source_ref", "type", "target_ref"])
        batch.drop_column("origin_ref")

    with op.batch_alter_table("entities") as batch:
        batch.drop_index(batch.f("ix_entities_kind_entity_ref_uid"))
        batch.drop_index(batch.f("ix_entities_parent_ref"))
        batch.drop_index(batch.f("ix_entities_location_key"))
        batch.drop_column("search_text")
        batch.drop_column("status_items")
        batch.drop_column("parent_ref")
        batch.drop_column("location_key")
