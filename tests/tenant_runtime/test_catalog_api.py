"""`GET /api/catalog/entities`: Backstage's shape, relations, filters and errors."""

from __future__ import annotations

import uuid

import pytest
from litestar import Litestar
from litestar.testing import TestClient

pytestmark = pytest.mark.catalog

ENTITIES = "/api/catalog/entities"


def refs_of(entities: list[dict[str, object]]) -> list[str]:
    refs = []
    for entity in entities:
        metadata = entity["metadata"]
        assert isinstance(metadata, dict)
        refs.append(f"{entity['kind']}:{metadata['namespace']}/{metadata['name']}".lower())
    return refs


def test_lists_the_seed_catalog_as_a_bare_array_ordered_by_ref(
    client: TestClient[Litestar], seed_refs: list[str]
) -> None:
    response = client.get(ENTITIES)

    assert response.status_code == 200
    assert isinstance(response.json(), list)
    assert refs_of(response.json()) == seed_refs


def test_entities_have_backstage_shape_with_server_assigned_uid_and_etag(
    client: TestClient[Litestar],
) -> None:
    [api] = client.get(ENTITIES, params={"filter": "kind=api"}).json()

    metadata = api["metadata"]
    assert api["apiVersion"] == "backstage.io/v1alpha1"
    assert api["kind"] == "API"
    assert metadata["name"] == "orders-api"
    assert metadata["namespace"] == "default"
    assert metadata["title"] == "Orders API"
    assert metadata["description"] == "Create and look up customer orders."
    assert str(uuid.UUID(metadata["uid"])) == metadata["uid"]
    assert len(metadata["etag"]) == 40
    assert api["spec"]["type"] == "openapi"
    assert api["spec"]["definition"].startswith("openapi: 3.0.3\n")
    assert api["relations"] == [
        {"type": "apiConsumedBy", "targetRef": "component:default/storefront-web"},
        {"type": "apiProvidedBy", "targetRef": "component:default/orders-service"},
        {"type": "ownedBy", "targetRef": "group:default/platform-team"},
        {"type": "partOf", "targetRef": "system:default/storefront"},
    ]


def test_every_spec_reference_appears_in_both_directions(
    client: TestClient[Litestar], seed_relations: set[tuple[str, str, str]]
) -> None:
    entities = client.get(ENTITIES).json()

    served = {
        (ref, relation["type"], relation["targetRef"])
        for ref, entity in zip(refs_of(entities), entities, strict=True)
        for relation in entity["relations"]
    }
    assert served == seed_relations


def test_the_group_lists_its_members_and_what_it_owns(client: TestClient[Litestar]) -> None:
    [group] = client.get(ENTITIES, params={"filter": "kind=group"}).json()

    assert group["relations"] == [
        {"type": "hasMember", "targetRef": "user:default/ada.lovelace"},
        {"type": "hasMember", "targetRef": "user:default/grace.hopper"},
        {"type": "ownerOf", "targetRef": "api:default/orders-api"},
        {"type": "ownerOf", "targetRef": "component:default/orders-service"},
        {"type": "ownerOf", "targetRef": "component:default/storefront-web"},
        {"type": "ownerOf", "targetRef": "resource:default/orders-db"},
        {"type": "ownerOf", "targetRef": "system:default/storefront"},
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            ["kind=component"],
            ["component:default/orders-service", "component:default/storefront-web"],
        ),
        (["kind=component,spec.type=service"], ["component:default/orders-service"]),
        (["KIND=Component,Spec.type=WEBSITE"], ["component:default/storefront-web"]),
        (
            ["kind=user", "kind=resource"],
            [
                "resource:default/orders-db",
                "user:default/ada.lovelace",
                "user:default/grace.hopper",
            ],
        ),
        (["kind=api,kind=system"], ["api:default/orders-api", "system:default/storefront"]),
        (["metadata.name=Ada.Lovelace"], ["user:default/ada.lovelace"]),
        (["metadata.namespace=default,kind=group"], ["group:default/platform-team"]),
        (["metadata.namespace=other"], []),
        (
            ["spec.lifecycle=production,spec.owner=platform-team,kind=api"],
            ["api:default/orders-api"],
        ),
        (["kind=resource,spec.type"], ["resource:default/orders-db"]),
        (["kind=user,spec.type"], []),
        (
            ["relations.memberOf=group:default/platform-team"],
            [
                "user:default/ada.lovelace",
                "user:default/grace.hopper",
            ],
        ),
        (["relations.providesapi=API:default/orders-api"], ["component:default/orders-service"]),
        (
            ["metadata.annotations.backstage.io/techdocs-ref=dir:."],
            ["component:default/orders-service"],
        ),
        (["metadata.tags.commerce"], ["system:default/storefront"]),
        (["metadata.annotations.backstage.io/no-such-annotation"], []),
    ],
)
def test_filters(client: TestClient[Litestar], filters: list[str], expected: list[str]) -> None:
    response = client.get(ENTITIES, params={"filter": filters})

    assert response.status_code == 200
    assert refs_of(response.json()) == expected


def test_limit_and_offset_page_through_the_ordered_catalog(
    client: TestClient[Litestar], seed_refs: list[str]
) -> None:
    first = client.get(ENTITIES, params={"limit": 3}).json()
    second = client.get(ENTITIES, params={"limit": 3, "offset": 3}).json()
    last = client.get(ENTITIES, params={"limit": 3, "offset": 6}).json()

    assert refs_of(first) == seed_refs[:3]
    assert refs_of(second) == seed_refs[3:6]
    assert refs_of(last) == seed_refs[6:]


def test_a_bad_limit_gets_backstages_error_body(client: TestClient[Litestar]) -> None:
    response = client.get(ENTITIES, params={"limit": 0})

    assert response.status_code == 400
    assert response.json() == {
        "error": {"name": "InputError", "message": "Invalid query: limit: Expected `int` >= 1"},
        "request": {"method": "GET", "url": "/api/catalog/entities?limit=0"},
        "response": {"statusCode": 400},
    }


def test_a_non_numeric_offset_is_an_input_error(client: TestClient[Litestar]) -> None:
    response = client.get(ENTITIES, params={"offset": "first"})

    assert response.status_code == 400
    assert response.json()["error"]["name"] == "InputError"
    assert response.json()["response"] == {"statusCode": 400}


def test_an_unknown_catalog_route_is_a_not_found_error(client: TestClient[Litestar]) -> None:
    response = client.get("/api/catalog/entities/by-uid/nope/extra")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"name": "NotFoundError", "message": "Not Found"},
        "request": {"method": "GET", "url": "/api/catalog/entities/by-uid/nope/extra"},
        "response": {"statusCode": 404},
    }


def test_errors_outside_the_catalog_keep_litestars_shape(client: TestClient[Litestar]) -> None:
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.json() == {"status_code": 404, "detail": "Not Found"}


def test_a_limited_page_links_to_the_next_with_an_after_cursor(
    client: TestClient[Litestar], seed_refs: list[str]
) -> None:
    first = client.get(ENTITIES, params={"limit": 5})
    link = first.headers["link"]
    after = link.split("after=", 1)[1].split(">", 1)[0]

    second = client.get(ENTITIES, params={"after": after})

    assert link.endswith('; rel="next"')
    assert refs_of(first.json()) + refs_of(second.json()) == seed_refs


def test_predicate_queries_support_not_and_prefix(client: TestClient[Litestar]) -> None:
    query = {"$all": [{"metadata.name": {"$hasPrefix": "orders"}}, {"$not": {"kind": "api"}}]}

    response = client.post(f"{ENTITIES}/by-query", json={"query": query, "limit": 10})

    assert sorted(refs_of(response.json()["items"])) == [
        "component:default/orders-service",
        "resource:default/orders-db",
    ]


def test_facets_on_a_relation_count_its_targets(client: TestClient[Litestar]) -> None:
    response = client.get("/api/catalog/entity-facets", params={"facet": "relations.ownedBy"})

    assert response.json() == {
        "facets": {"relations.ownedBy": [{"value": "group:default/platform-team", "count": 5}]}
    }


def test_an_unknown_query_operator_is_an_input_error(client: TestClient[Litestar]) -> None:
    response = client.post(f"{ENTITIES}/by-query", json={"query": {"$nope": []}})

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "unknown query operator '$nope'"


def test_a_bracket_in_fields_is_an_input_error(client: TestClient[Litestar]) -> None:
    response = client.get(ENTITIES, params={"fields": "metadata.tags[0]"})

    assert response.status_code == 400
