"""Relations computed from descriptor spec fields, in both directions (reference 2)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tenant_runtime.catalog.descriptors import EntityDescriptor
from tenant_runtime.catalog.errors import InvalidEntity
from tenant_runtime.catalog.refs import EntityRef, InvalidEntityRef, parse_entity_ref


@dataclass(frozen=True)
class Relation:
    source: EntityRef
    type: str
    target: EntityRef


@dataclass(frozen=True)
class RelationRule:
    """A spec field naming other entities, and the relation pair it produces."""

    kinds: frozenset[str]
    field: str
    type: str
    reverse_type: str
    default_kind: str | None


def _rule(
    kinds: str, field: str, type_: str, reverse_type: str, default_kind: str | None
) -> RelationRule:
    return RelationRule(frozenset(kinds.split()), field, type_, reverse_type, default_kind)


# Mirrors Backstage's BuiltinKindsEntityProcessor, plus the scaffolder's Template owner.
RELATION_RULES: tuple[RelationRule, ...] = (
    _rule("component api resource system domain template", "owner", "ownedBy", "ownerOf", "group"),
    _rule("component api resource", "system", "partOf", "hasPart", "system"),
    _rule("component", "subcomponentOf", "partOf", "hasPart", "component"),
    _rule("system", "domain", "partOf", "hasPart", "domain"),
    _rule("domain", "subdomainOf", "partOf", "hasPart", "domain"),
    _rule("component", "providesApis", "providesApi", "apiProvidedBy", "api"),
    _rule("component", "consumesApis", "consumesApi", "apiConsumedBy", "api"),
    _rule("component resource", "dependsOn", "dependsOn", "dependencyOf", None),
    _rule("component resource", "dependencyOf", "dependencyOf", "dependsOn", None),
    _rule("user", "memberOf", "memberOf", "hasMember", "group"),
    _rule("group", "members", "hasMember", "memberOf", "user"),
    _rule("group", "parent", "childOf", "parentOf", "group"),
    _rule("group", "children", "parentOf", "childOf", "group"),
)

# Lower-cased relation type -> as served, so `relations.<type>` filters use the index.
RELATION_TYPES: dict[str, str] = {
    name.lower(): name for rule in RELATION_RULES for name in (rule.type, rule.reverse_type)
}


def relations_of(descriptor: EntityDescriptor) -> Iterator[Relation]:
    """Every relation the descriptor implies: each spec reference and its reverse."""
    spec = descriptor.body.get("spec", {})
    source = descriptor.ref
    for rule in RELATION_RULES:
        if source.kind not in rule.kinds or spec.get(rule.field) is None:
            continue
        for target in _targets(spec[rule.field], rule, source):
            yield Relation(source, rule.type, target)
            yield Relation(target, rule.reverse_type, source)


def _targets(value: object, rule: RelationRule, source: EntityRef) -> Iterator[EntityRef]:
    values = value if isinstance(value, list) else [value]
    for item in values:
        try:
            if isinstance(item, str):
                yield parse_entity_ref(
                    item, default_kind=rule.default_kind, default_namespace=source.namespace
                )
            elif isinstance(item, dict) and isinstance(item.get("name"), str):
                kind = item.get("kind", rule.default_kind)
                if not isinstance(kind, str):
                    raise InvalidEntityRef(f"{item!r} has no kind and none can be assumed")
                yield EntityRef.of(kind, str(item.get("namespace", source.namespace)), item["name"])
            else:
                raise InvalidEntityRef(f"{item!r} is not an entity reference")
        except InvalidEntityRef as error:
            raise InvalidEntity(f"spec.{rule.field}: {error}") from error
