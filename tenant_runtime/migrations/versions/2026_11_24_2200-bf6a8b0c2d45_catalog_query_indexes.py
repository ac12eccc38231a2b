"""catalog: query indexes for 100,000 entities

Revision ID: bf6a8b0c2d45
Revises: ae5f7a9b1c34
Create Date: 2026-11-24 22:00:00

Search rows get their entity's kind, with an index on (key, kind, value, entity_uid), so
filters and facets within one kind read only that kind's rows. Entities get an index on
(kind, name, uid) for by-query pages ordered by name. A table of facet counts per
(key, kind, value), filled here from the search rows and kept by the store, answers
facets over the whole catalog or within some kinds. On PostgreSQL only: a trigram GIN
index on the name for substring filters (`pg_trgm`, a trusted contrib extension), and
multi-column statistics on (key, kind, value) so the planner sees rare combinations.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bf6a8b0c2d45"
down_revision: str | None = "ae5f7a9b1c34"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entity_search") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=63), nullable=True))
    op.execute(
        "UPDATE entity_search SET kind = "
        "(SELECT entities.kind FROM entities WHERE entities.uid = entity_search.entity_uid)"
    )
    with op.batch_alter_table("entity_search") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=63), nullable=False)
        batch.create_index(
            batch.f("ix_entity_search_key_kind_value_entity_uid"),
            ["key", "kind", "value", "entity_uid"],
            postgresql_include=["original_value"],
        )
    op.create_index(op.f("ix_entities_kind_name_uid"), "entities", ["kind", "name", "uid"])
    op.create_table(
        "entity_facet_counts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=63), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "kind", "value", name=op.f("pk_entity_facet_counts")),
    )
    op.execute(
        "INSERT INTO entity_facet_counts (key, kind, value, count) "
        "SELECT key, kind, original_value, count(*) FROM entity_search "
        "WHERE original_value IS NOT NULL GROUP BY key, kind, original_value"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_entities_name_trgm ON entities USING gin (name gin_trgm_ops)")
        op.execute(
            "CREATE STATISTICS st_entity_search_key_kind_value (mcv) "
            "ON key, kind, value FROM entity_search"
        )
        op.execute("ANALYZE entities, entity_search")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_entity_search_key_kind_value")
        op.execute("DROP INDEX IF EXISTS ix_entities_name_trgm")
    op.drop_table("entity_facet_counts")
    op.drop_index(op.f("ix_entities_kind_name_uid"), table_name="entities")
    with op.batch_alter_table("entity_search") as batch:
        batch.drop_index(batch.f("ix_entity_search_key_kind_value_entity_uid"))
        batch.drop_column("kind")
