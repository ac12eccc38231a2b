"""Backstage's validation rules per kind, the flattened search rows, filter parsing,
field projection and cursors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tenant_runtime.catalog.cursors import decode_cursor, encode_cursor
from tenant_runtime.catalog.descriptors import InvalidEntity, validate_descriptor
from tenant_runtime.catalog.errors import CatalogInputError
from tenant_runtime.catalog.filters import parse_filter_params
from tenant_runtime.catalog.search import full_text, search_rows
from tenant_runtime.catalog.service import parse_order, project

pytestmark = pytest.mark.catalog

COMPONENT: dict[str, Any] = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Component",
    "metadata": {
        "name": "petstore",
        "tags": ["java", "web"],
        "annotations": {"backstage.io/techdocs-ref": "dir:."},
        "links": [{"url": "https://example.com", "title": "Home"}],
    },
    "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"},
}


def changed(path: str, value: Any) -> dict[str, Any]:
    entity = copy.deepcopy(COMPONENT)
    *parents, last = path.split(".")
    target = entity
    for part in parents:
        target = target[part]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return entity


def test_a_valid_component_passes() -> None:
    assert str(validate_descriptor(COMPONENT).ref) == "component:default/petstore"


@pytest.mark.parametrize(
    ("entity", "message"),
    [
        (changed("spec.owner", None), "spec.owner is required"),
        (changed("spec.type", ""), "spec.type must be a non-empty string"),
        (changed("spec.providesApis", "not-a-list"), "spec.providesApis must be a list"),
        (changed("kind", "Widget"), "no processor recognizes kind 'Widget'"),
        (changed("apiVersion", "backstage.io/v2"), "no processor recognizes kind"),
        (changed("metadata.tags", ["Not Valid"]), "metadata.tags: 'Not Valid' is not valid"),
        (changed("metadata.labels", {"a": "bad value!"}), "metadata.labels.a value"),
        (changed("metadata.annotations", {"-bad-/x": "y"}), "has an invalid prefix"),
        (changed("metadata.links", [{"title": "no url"}]), "metadata.links[0] needs a url"),
        (changed("spec.name", "reserved"), "spec may not hold the reserved key 'name'"),
        ({**COMPONENT, "extra": 1}, "unknown root field(s) extra"),
    ],
)
def test_backstages_rules_reject(entity: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidEntity) as raised:
        validate_descriptor(entity)

    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("Group", {"type": "team", "children": []}),
        ("User", {"memberOf": []}),
        ("System", {"owner": "team-a"}),
        ("Domain", {"owner": "team-a"}),
        ("Resource", {"type": "database", "owner": "team-a"}),
        ("Location", {"targets": ["./a.yaml"]}),
        ("API", {"type": "openapi", "lifecycle": "production", "owner": "a", "definition": "x"}),
    ],
)
def test_every_built_in_kind_is_accepted(kind: str, spec: dict[str, Any]) -> None:
    entity = {"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}}

    assert validate_descriptor({**entity, "spec": spec}).ref.kind == kind.lower()


def test_a_template_needs_an_action_on_every_step() -> None:
    template = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "new-service"},
        "spec": {"type": "service", "steps": [{"id": "fetch"}]},
    }

    with pytest.raises(InvalidEntity, match=r"spec.steps\[0\] needs an action"):
        validate_descriptor(template)


def test_search_rows_flatten_like_backstage() -> None:
    rows = {(key, value) for key, value, _ in search_rows(COMPONENT)}

    assert {
        ("kind", "component"),
        ("metadata.tags", "java"),
        ("metadata.tags.java", "true"),
        ("metadata.annotations.backstage.io/techdocs-ref", "dir:."),
        ("metadata.links.url", "https://example.com"),
        ("metadata.namespace", "default"),
        ("spec.owner", "team-a"),
    } <= rows


def test_search_rows_keep_long_values_as_null() -> None:
    rows = search_rows(changed("metadata.description", "x" * 300))

    assert ("metadata.description", None, None) in rows


def test_full_text_holds_names_tags_and_owner() -> None:
    assert full_text(COMPONENT).split() == [
        "petstore",
        "Component",
        "service",
        "team-a",
        "production",
        "java",
        "web",
    ]


def test_filter_params_become_one_predicate() -> None:
    predicate = parse_filter_params(["kind=component,kind=api,spec.type", "metadata.name=x"])

    assert predicate == {
        "$any": [
            {"$all": [{"kind": {"$in": ["component", "api"]}}, {"spec.type": {"$exists": True}}]},
            {"$all": [{"metadata.name": {"$in": ["x"]}}]},
        ]
    }


def test_projection_keeps_dotted_annotation_keys() -> None:
    kept = project(COMPONENT, ["kind", "metadata.annotations.backstage.io/techdocs-ref"])

    assert kept == {
        "kind": "Component",
        "metadata": {"annotations": {"backstage.io/techdocs-ref": "dir:."}},
    }


def test_get_entities_orders_read_direction_first() -> None:
    order = parse_order("desc:metadata.name", separator=":", field_first=False)

    assert (order.field, order.order) == ("metadata.name", "desc")


def test_by_query_orders_read_field_first() -> None:
    order = parse_order("metadata.name,asc", separator=",", field_first=True)

    assert (order.field, order.order) == ("metadata.name", "asc")


def test_a_bad_order_is_an_input_error() -> None:
    with pytest.raises(CatalogInputError):
        parse_order("sideways:metadata.name", separator=":", field_first=False)


def test_cursors_round_trip() -> None:
    assert decode_cursor(encode_cursor({"orderFieldValues": ["x"]})) == {"orderFieldValues": ["x"]}


def test_a_garbled_cursor_is_an_input_error() -> None:
    with pytest.raises(CatalogInputError, match="Malformed cursor"):
        decode_cursor("not base64 at all!")
