"""The store's facet counts stay equal to the search rows they summarize, on both databases.

Facets over the whole catalog or within some kinds read the counts; facets with any
other filter count the search rows. Both must give the same answer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from infra.testenv import services
from tenant_runtime.catalog.descriptors import validate_descriptor
from tenant_runtime.catalog.models import EntityRecord, FacetCountRecord, SearchRecord
from tenant_runtime.catalog.service import CatalogService, EntityQuery
from tenant_runtime.catalog.store import CatalogStore
from tenant_runtime.core.database import create_database_engine
from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.migrate import migrate

pytestmark = pytest.mark.catalog


def component(name: str, tags: list[str], type_: str = "service") -> dict[str, Any]:
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "tags": tags},
        "spec": {"type": type_, "lifecycle": "production", "owner": "team-a"},
    }


def api(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "API",
        "metadata": {"name": name, "tags": ["java"]},
        "spec": {
            "type": "openapi",
            "lifecycle": "production",
            "owner": "team-a",
            "definition": "x",
        },
    }


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def catalog_session(
    request: pytest.FixtureRequest, runtime_settings: RuntimeSettings
) -> Iterator[Session]:
    settings = runtime_settings
    name = f"backlot_catalog_counts_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin_url = ""
    if request.param == "postgresql":
        admin_url = request.getfixturevalue("postgres_admin_url")
        url = services.create_database(admin_url, name)
        settings = runtime_settings.model_copy(update={"database_url": url})
    migrate(settings)
    engine = create_database_engine(settings.database_url)
    with Session(engine) as session:
        yield session
    engine.dispose()
    if admin_url:
        services.drop_database(admin_url, name)


def write(session: Session, *bodies: dict[str, Any]) -> None:
    CatalogStore(session).upsert(
        [validate_descriptor(body) for body in bodies], location_key="test:counts", actor=None
    )


def stored_counts(session: Session) -> set[tuple[str, str, str, int]]:
    return {
        (row.key, row.kind, row.value, row.count)
        for row in session.scalars(select(FacetCountRecord))
    }


def counted_search_rows(session: Session) -> set[tuple[str, str, str, int]]:
    rows = session.execute(
        select(SearchRecord.key, SearchRecord.kind, SearchRecord.original_value, func.count())
        .where(SearchRecord.original_value.is_not(None))
        .group_by(SearchRecord.key, SearchRecord.kind, SearchRecord.original_value)
    )
    return {(key, kind, value, count) for key, kind, value, count in rows}


def test_counts_follow_creates_updates_and_deletes(catalog_session: Session) -> None:
    session = catalog_session
    write(session, component("a", ["java", "web"]), component("b", ["java"]), api("c"))
    write(session, component("a", ["go"], "website"), component("b", ["java"]), api("c"))
    gone = session.scalars(select(EntityRecord).where(EntityRecord.name == "b")).all()
    CatalogStore(session).delete(gone, actor=None, location_key="test:counts")
    session.commit()

    assert stored_counts(session) == counted_search_rows(session)


def test_facets_within_a_kind_match_counting_the_search_rows(catalog_session: Session) -> None:
    session = catalog_session
    write(
        session,
        component("a", ["counted-x", "counted-y"]),
        component("b", ["counted-x"], "website"),
        api("c"),
    )
    write(session, component("b", ["counted-z"], "website"))
    session.commit()
    service = CatalogService(session)
    facets = ["metadata.tags", "spec.type", "kind"]

    from_counts = service.facets(facets, predicate={"kind": "component"})
    # A second condition that every entity meets makes the facets count search rows.
    from_rows = service.facets(
        facets, predicate={"$all": [{"kind": "component"}, {"metadata.namespace": "default"}]}
    )

    assert from_counts == from_rows
    assert [f for f in from_counts["metadata.tags"] if f["value"].startswith("counted-")] == [
        {"value": "counted-x", "count": 1},
        {"value": "counted-y", "count": 1},
        {"value": "counted-z", "count": 1},
    ]


@pytest.mark.parametrize(
    ("predicate", "kinds"),
    [(None, None), ({"kind": "component"}, ["component"]), ({"kind": {"$in": ["API"]}}, ["api"])],
)
def test_totals_of_kind_queries_come_out_as_counted(
    catalog_session: Session, predicate: dict[str, Any] | None, kinds: list[str] | None
) -> None:
    session = catalog_session
    write(session, component("a", ["x"]), component("b", ["y"]), api("c"))
    session.commit()
    counted = select(func.count()).select_from(EntityRecord)
    if kinds is not None:
        counted = counted.where(EntityRecord.kind.in_(kinds))

    page = CatalogService(session).query_entities(EntityQuery(predicate), limit=0)

    assert page["totalItems"] == session.scalar(counted)
