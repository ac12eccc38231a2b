"""Every `CatalogClient` method of the pinned @backstage/catalog-client, against a live runtime."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tenant_runtime.conformance.conftest import Bridge

pytestmark = [pytest.mark.catalog, pytest.mark.integration]

ARTIST_LOOKUP = "component:default/artist-lookup"
USERS = [
    "user:default/ada.lovelace",
    "user:default/breanna.davison",
    "user:default/grace.hopper",
    "user:default/guest",
    "user:default/janelle.dawe",
    "user:default/nigel.manning",
    "user:development/guest",
]
# Methods of the client that are its own plumbing, not part of CatalogApi.
PRIVATE_METHODS = {
    "constructor",
    "requestIgnored",
    "requestRequired",
    "requestOptional",
    "getFilterValue",
    "queryEntitiesByPredicate",
    "getEntityFacetsByPredicate",
}
COVERED: set[str] = set()


def ref_of(entity: dict[str, Any]) -> str:
    metadata = entity["metadata"]
    return f"{entity['kind']}:{metadata.get('namespace', 'default')}/{metadata['name']}".lower()


def call(client: Bridge, method: str, *args: Any) -> Any:
    COVERED.add(method)
    return client.call(method, *args)


def error(client: Bridge, method: str, *args: Any) -> dict[str, Any]:
    COVERED.add(method)
    return client.error(method, *args)


def generated_ref(target: str) -> str:
    digest = hashlib.sha1(f"url:{target}".encode()).hexdigest()
    return f"location:default/generated-{digest}"


# -- locations ----------------------------------------------------------------------


def test_add_location_answers_with_the_stored_location(
    examples_location: dict[str, Any], examples_target: str
) -> None:
    COVERED.add("addLocation")
    location = examples_location["location"]

    assert str(uuid.UUID(location["id"])) == location["id"]
    assert (location["type"], location["target"]) == ("url", examples_target)
    assert location["entityRef"] == generated_ref(examples_target)
    assert examples_location["entities"] == []


def test_add_location_twice_is_a_conflict(
    client: Bridge, examples_location: dict[str, Any], examples_target: str
) -> None:
    failure = error(client, "addLocation", {"type": "url", "target": examples_target})

    assert (failure["statusCode"], failure["bodyName"]) == (409, "ConflictError")


def test_a_dry_run_lists_the_entities_and_says_the_location_exists(
    client: Bridge, examples_location: dict[str, Any], examples_target: str
) -> None:
    result = call(client, "addLocation", {"type": "url", "target": examples_target, "dryRun": True})

    assert result["exists"] is True
    assert ARTIST_LOOKUP in {ref_of(e) for e in result["entities"]}


def test_get_locations_lists_the_registered_location(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    result = call(client, "getLocations")

    assert examples_location["location"] in result["items"]


def test_get_location_by_id(client: Bridge, examples_location: dict[str, Any]) -> None:
    location = examples_location["location"]

    assert call(client, "getLocationById", location["id"]) == location


def test_get_location_by_id_of_an_unknown_id_is_undefined(client: Bridge) -> None:
    assert call(client, "getLocationById", str(uuid.uuid4())) is None


def test_get_location_by_ref(
    client: Bridge, examples_location: dict[str, Any], examples_target: str
) -> None:
    result = call(client, "getLocationByRef", f"url:{examples_target}")

    assert result == examples_location["location"]


def test_get_location_by_entity_follows_the_origin_annotation(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    assert call(client, "getLocationByEntity", ARTIST_LOOKUP) == examples_location["location"]


def test_query_locations_pages_with_a_cursor(
    client: Bridge, examples_location: dict[str, Any], files_url: str
) -> None:
    extra = call(client, "addLocation", {"target": f"{files_url}/apis/hello-world-api.yaml"})
    first = call(client, "queryLocations", {"limit": 1})
    second = call(client, "queryLocations", {"cursor": first["pageInfo"]["nextCursor"]})

    assert first["totalItems"] == 2
    assert first["items"] + second["items"] == [
        examples_location["location"],
        extra["location"],
    ]
    call(client, "removeLocationById", extra["location"]["id"])


def test_stream_locations_yields_every_location(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    pages = call(client, "streamLocations", {"query": {"type": "url"}})

    assert [item for page in pages for item in page] == [examples_location["location"]]


def test_update_location_points_it_at_another_file(client: Bridge, files_url: str) -> None:
    added = call(client, "addLocation", {"target": f"{files_url}/domains/artists-domain.yaml"})
    moved = f"{files_url}/resources/artists-db-resource.yaml"

    updated = call(client, "updateLocation", added["location"]["id"], {"target": moved})

    assert (updated["id"], updated["target"]) == (added["location"]["id"], moved)
    call(client, "removeLocationById", added["location"]["id"])


def test_remove_location_by_id_removes_its_entities(client: Bridge, files_url: str) -> None:
    added = call(client, "addLocation", {"target": f"{files_url}/apis/hello-world-api.yaml"})
    assert call(client, "getEntityByRef", "api:default/hello-world") is not None

    call(client, "removeLocationById", added["location"]["id"])

    assert call(client, "getLocationById", added["location"]["id"]) is None


# -- entities -----------------------------------------------------------------------


def test_get_entities_filters_by_kind(client: Bridge, examples_location: dict[str, Any]) -> None:
    result = call(client, "getEntities", {"filter": {"kind": "User"}})

    assert sorted(ref_of(e) for e in result["items"]) == USERS


def test_get_entities_orders_and_projects_fields(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    result = call(
        client,
        "getEntities",
        {
            "filter": {"kind": "Group"},
            "fields": ["metadata.name"],
            "order": {"field": "metadata.name", "order": "desc"},
        },
    )

    assert result["items"] == [
        {"metadata": {"name": "team-a"}},
        {"metadata": {"name": "platform-team"}},
        {"metadata": {"name": "backstage"}},
    ]


def test_get_entities_carries_relations_in_both_directions(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    [team] = call(client, "getEntities", {"filter": {"kind": "group", "metadata.name": "team-a"}})[
        "items"
    ]

    relations = {(r["type"], r["targetRef"]) for r in team["relations"]}
    assert {
        ("childOf", "group:default/backstage"),
        ("hasMember", "user:development/guest"),
        ("ownerOf", ARTIST_LOOKUP),
    } <= relations


def test_get_entities_by_refs_keeps_order_and_marks_missing(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    result = call(
        client,
        "getEntitiesByRefs",
        {"entityRefs": [ARTIST_LOOKUP, "component:default/no-such-thing", "group:default/team-a"]},
    )

    assert [ref_of(e) if e else None for e in result["items"]] == [
        ARTIST_LOOKUP,
        None,
        "group:default/team-a",
    ]


def test_query_entities_pages_forward_with_next_cursors(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    request = {
        "filter": {"kind": "user"},
        "limit": 3,
        "orderFields": {"field": "metadata.name", "order": "asc"},
    }
    first = call(client, "queryEntities", request)
    second = call(client, "queryEntities", {"cursor": first["pageInfo"]["nextCursor"]})
    third = call(client, "queryEntities", {"cursor": second["pageInfo"]["nextCursor"]})

    names = [e["metadata"]["name"] for page in (first, second, third) for e in page["items"]]
    assert first["totalItems"] == 7
    assert names == sorted(names)
    assert len(names) == 7
    assert "nextCursor" not in third["pageInfo"]


def test_query_entities_pages_back_with_the_previous_cursor(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    request = {"filter": {"kind": "user"}, "limit": 3}
    first = call(client, "queryEntities", request)
    second = call(client, "queryEntities", {"cursor": first["pageInfo"]["nextCursor"]})

    back = call(client, "queryEntities", {"cursor": second["pageInfo"]["prevCursor"]})

    assert back["items"] == first["items"]


def test_query_entities_full_text_filter(client: Bridge, examples_location: dict[str, Any]) -> None:
    result = call(
        client,
        "queryEntities",
        {"fullTextFilter": {"term": "ARTIST", "fields": ["metadata.name"]}, "limit": 50},
    )

    assert sorted(ref_of(e) for e in result["items"]) == [
        "component:default/artist-lookup",
        "domain:default/artists",
        "resource:default/artists-db",
        "system:default/artist-engagement-portal",
    ]


def test_query_entities_with_a_predicate_query(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    query = {"$all": [{"kind": "component"}, {"spec.lifecycle": {"$in": ["experimental"]}}]}

    result = call(client, "queryEntities", {"query": query, "limit": 10})

    assert [ref_of(e) for e in result["items"]] == [ARTIST_LOOKUP]


def test_stream_entities_yields_every_match_in_pages(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    pages = call(client, "streamEntities", {"filter": {"kind": "user"}, "pageSize": 2})

    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert sorted(ref_of(e) for page in pages for e in page) == USERS


def test_get_entity_by_ref_carries_the_managed_by_annotations(
    client: Bridge, examples_location: dict[str, Any], files_url: str, examples_target: str
) -> None:
    entity = call(client, "getEntityByRef", ARTIST_LOOKUP)

    annotations = entity["metadata"]["annotations"]
    assert annotations["backstage.io/managed-by-location"] == (
        f"url:{files_url}/components/artist-lookup-component.yaml"
    )
    assert annotations["backstage.io/managed-by-origin-location"] == f"url:{examples_target}"


def test_get_entity_by_ref_of_a_missing_entity_is_undefined(client: Bridge) -> None:
    assert call(client, "getEntityByRef", "component:default/never-registered") is None


def test_get_entity_by_name_is_case_insensitive(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    entity = call(client, "getEntityByName", {"kind": "COMPONENT", "name": "Artist-Lookup"})

    assert ref_of(entity) == ARTIST_LOOKUP


def test_get_entity_ancestors_walks_up_to_the_registered_location(
    client: Bridge, examples_location: dict[str, Any], examples_target: str
) -> None:
    result = call(client, "getEntityAncestors", {"entityRef": ARTIST_LOOKUP})

    assert result["rootEntityRef"] == ARTIST_LOOKUP
    assert [(ref_of(i["entity"]), i["parentEntityRefs"]) for i in result["items"]] == [
        (ARTIST_LOOKUP, ["location:default/backstage-examples"]),
        ("location:default/backstage-examples", [generated_ref(examples_target)]),
        (generated_ref(examples_target), []),
    ]


def test_get_entity_facets_counts_values(client: Bridge, examples_location: dict[str, Any]) -> None:
    result = call(
        client, "getEntityFacets", {"facets": ["spec.type"], "filter": {"kind": "component"}}
    )

    assert result["facets"]["spec.type"] == [
        {"value": "service", "count": 3},
        {"value": "website", "count": 1},
    ]


def test_get_entity_facets_with_a_predicate_query(
    client: Bridge, examples_location: dict[str, Any]
) -> None:
    result = call(
        client, "getEntityFacets", {"facets": ["metadata.tags"], "query": {"kind": "component"}}
    )

    assert {"value": "java", "count": 1} in result["facets"]["metadata.tags"]


def test_refresh_entity_reads_the_changed_file(
    client: Bridge, examples_location: dict[str, Any], served_files: Path
) -> None:
    path = served_files / "resources" / "artists-db-resource.yaml"
    path.write_text(path.read_text().replace("Stores artist details", "Stores artists"))

    call(client, "refreshEntity", "resource:default/artists-db")

    entity = call(client, "getEntityByRef", "resource:default/artists-db")
    assert entity["metadata"]["description"] == "Stores artists"


def test_remove_entity_by_uid_removes_it(client: Bridge) -> None:
    # A seeded entity: no location emits it again, so it stays removed.
    [user] = call(client, "getEntities", {"filter": {"metadata.name": "ada.lovelace"}})["items"]

    call(client, "removeEntityByUid", user["metadata"]["uid"])

    assert call(client, "getEntityByRef", "user:default/ada.lovelace") is None


def test_validate_entity_accepts_a_valid_entity(client: Bridge) -> None:
    entity = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "valid-one"},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"},
    }

    assert call(client, "validateEntity", entity, "url:https://example.com/catalog-info.yaml") == {
        "valid": True
    }


def test_validate_entity_rejects_backstages_invalid_example(client: Bridge) -> None:
    path = Path(__file__).resolve().parent.parent / "fixtures/backstage-examples/components"
    entity = yaml.safe_load((path / "invalid-component.yaml").read_text())

    result = call(client, "validateEntity", entity, "url:https://example.com/catalog-info.yaml")

    assert result["valid"] is False
    assert "metadata.name 'invalid component' is not valid" in result["errors"][0]["message"]


def test_analyze_location_finds_the_existing_catalog_file(
    client: Bridge, examples_location: dict[str, Any], files_url: str
) -> None:
    result = call(client, "analyzeLocation", {"location": {"type": "url", "target": files_url}})

    found = {ref_of(f["entity"]): f["isRegistered"] for f in result["existingEntityFiles"]}
    assert found[ARTIST_LOOKUP] is True


def test_requests_without_a_token_are_refused_with_401(anonymous_client: Bridge) -> None:
    failure = anonymous_client.error("getEntities")

    assert (failure["statusCode"], failure["bodyName"]) == (401, "AuthenticationError")


def test_every_client_method_is_covered(client: Bridge) -> None:
    """Runs last (file order): the pinned client's public methods were all exercised."""
    public = set(client.call("$methods")) - PRIVATE_METHODS

    assert public - COVERED == set()
