"""Reading `catalog-info.yaml`: valid Backstage entities in, clear errors for the rest."""

from __future__ import annotations

import pytest

from tenant_runtime.catalog.descriptors import InvalidEntity, parse_descriptors
from tenant_runtime.catalog.refs import EntityRef, InvalidEntityRef, parse_entity_ref
from tenant_runtime.catalog.relations import relations_of

pytestmark = pytest.mark.catalog

COMPONENT = """
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: service
  lifecycle: production
  owner: team-a
"""


def test_parse_fills_in_the_default_namespace_and_lower_cases_the_ref() -> None:
    [descriptor] = parse_descriptors(COMPONENT.format(name="Billing_API"), source="test.yaml")

    assert descriptor.ref == EntityRef("component", "default", "billing_api")
    assert descriptor.body["metadata"] == {"name": "Billing_API", "namespace": "default"}


def test_empty_documents_are_skipped() -> None:
    text = "---\n" + COMPONENT.format(name="a") + "---\n---\n" + COMPONENT.format(name="b")

    descriptors = parse_descriptors(text, source="test.yaml")

    assert [str(d.ref) for d in descriptors] == ["component:default/a", "component:default/b"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("kind: Component\nmetadata: {name: a}", "apiVersion is required"),
        ("apiVersion: backstage.io/v1alpha1\nmetadata: {name: a}", "kind is required"),
        ("apiVersion: backstage.io/v1alpha1\nkind: Component", "metadata must be a mapping"),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {title: A}",
            "metadata.name is required",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: 'has space'}",
            "metadata.name 'has space' is not valid",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a-}",
            "metadata.name 'a-' is not valid",
        ),
        (
            f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: {'a' * 64}}}",
            "at most 63 characters",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
            "metadata: {name: a, namespace: Team_A}",
            "metadata.namespace 'Team_A' is not valid",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: 9lives\nmetadata: {name: a}",
            "kind '9lives' is not valid",
        ),
        (
            "apiVersion: Backstage.IO/v1alpha1\nkind: Component\nmetadata: {name: a}",
            "its group must be a DNS subdomain",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a}\n"
            "relations: []",
            "'relations' is computed by the catalog",
        ),
        ("- just\n- a list", "an entity must be a mapping"),
    ],
)
def test_invalid_documents_are_rejected_with_the_reason(document: str, message: str) -> None:
    with pytest.raises(InvalidEntity, match=r"^bad\.yaml, document 1: ") as raised:
        parse_descriptors(document, source="bad.yaml")

    assert message in str(raised.value)


def test_an_entity_defined_twice_is_rejected() -> None:
    text = COMPONENT.format(name="billing") + "---\n" + COMPONENT.format(name="Billing")

    with pytest.raises(InvalidEntity, match="document 2: entity component:default/billing"):
        parse_descriptors(text, source="twice.yaml")


def test_yaml_syntax_errors_are_reported_as_invalid_entities() -> None:
    with pytest.raises(InvalidEntity, match=r"^broken\.yaml: not valid YAML"):
        parse_descriptors("kind: [unclosed", source="broken.yaml")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("team-a", "group:default/team-a"),
        ("user:Jane.Doe", "user:default/jane.doe"),
        ("Ops/team-b", "group:ops/team-b"),
        ("Component:Ops/Web", "component:ops/web"),
        ("ns/name:with-colon", "group:ns/name:with-colon"),
    ],
)
def test_entity_refs_resolve_with_defaults(ref: str, expected: str) -> None:
    assert str(parse_entity_ref(ref, default_kind="group")) == expected


@pytest.mark.parametrize("ref", ["component:", ":default/a", "component:/a"])
def test_entity_refs_with_an_empty_part_are_rejected(ref: str) -> None:
    with pytest.raises(InvalidEntityRef, match="empty kind, namespace or name"):
        parse_entity_ref(ref, default_kind="group")


def test_a_ref_without_kind_is_rejected_where_no_kind_can_be_assumed() -> None:
    with pytest.raises(InvalidEntityRef, match="has no kind"):
        parse_entity_ref("orders-db", default_kind=None)


def test_relations_default_to_the_entitys_own_namespace() -> None:
    text = """
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: web, namespace: shop}
spec:
  type: website
  lifecycle: production
  owner: web-team
  consumesApis: [default/orders-api]
"""
    [descriptor] = parse_descriptors(text, source="shop.yaml")

    relations = {(str(r.source), r.type, str(r.target)) for r in relations_of(descriptor)}

    assert relations == {
        ("component:shop/web", "ownedBy", "group:shop/web-team"),
        ("group:shop/web-team", "ownerOf", "component:shop/web"),
        ("component:shop/web", "consumesApi", "api:default/orders-api"),
        ("api:default/orders-api", "apiConsumedBy", "component:shop/web"),
    }
