"""The built-in kinds' spec schemas (Backstage's `catalog-model/src/schema/kinds`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tenant_runtime.catalog.errors import InvalidEntity

STRING = "string"
STRINGS = "strings"
OBJECT = "object"
LIST = "list"
OBJECT_OR_LIST = "object-or-list"


@dataclass(frozen=True)
class KindSchema:
    api_versions: frozenset[str]
    required: dict[str, str]
    optional: dict[str, str] = field(default_factory=dict)


BACKSTAGE_V1 = frozenset({"backstage.io/v1alpha1", "backstage.io/v1beta1"})
ENTITY_REFS = {"dependsOn": STRINGS, "dependencyOf": STRINGS}

KINDS: dict[str, KindSchema] = {
    "component": KindSchema(
        BACKSTAGE_V1,
        {"type": STRING, "lifecycle": STRING, "owner": STRING},
        {
            "system": STRING,
            "subcomponentOf": STRING,
            "providesApis": STRINGS,
            "consumesApis": STRINGS,
            **ENTITY_REFS,
        },
    ),
    "api": KindSchema(
        BACKSTAGE_V1,
        {"type": STRING, "lifecycle": STRING, "owner": STRING, "definition": STRING},
        {"system": STRING},
    ),
    "resource": KindSchema(
        BACKSTAGE_V1, {"type": STRING, "owner": STRING}, {"system": STRING, **ENTITY_REFS}
    ),
    "system": KindSchema(BACKSTAGE_V1, {"owner": STRING}, {"domain": STRING, "type": STRING}),
    "domain": KindSchema(BACKSTAGE_V1, {"owner": STRING}, {"subdomainOf": STRING, "type": STRING}),
    "group": KindSchema(
        BACKSTAGE_V1,
        {"type": STRING, "children": STRINGS},
        {"profile": OBJECT, "parent": STRING, "members": STRINGS},
    ),
    "user": KindSchema(
        BACKSTAGE_V1, {"memberOf": STRINGS}, {"profile": OBJECT, "leaderOf": STRINGS}
    ),
    "location": KindSchema(
        BACKSTAGE_V1, {}, {"type": STRING, "target": STRING, "targets": STRINGS, "presence": STRING}
    ),
    "template": KindSchema(
        frozenset({"scaffolder.backstage.io/v1beta3", "backstage.io/v1beta2"}),
        {"type": STRING, "steps": LIST},
        {
            "owner": STRING,
            "lifecycle": STRING,
            "parameters": OBJECT_OR_LIST,
            "output": OBJECT,
            "secrets": OBJECT,
            "presentation": OBJECT,
        },
    ),
}


def check_kind_spec(api_version: str, kind: str, spec: Mapping[str, Any]) -> None:
    """Reject a spec its kind's schema rejects, and kinds no processor knows.

    Backstage refuses an entity whose kind and apiVersion no processor recognizes
    ("possibly caused by a foreign kind or apiVersion"); Backlot knows the built-in kinds.
    """
    schema = KINDS.get(kind.lower())
    if schema is None or api_version not in schema.api_versions:
        raise InvalidEntity(
            f"no processor recognizes kind {kind!r} with apiVersion {api_version!r}; "
            f"known kinds: {', '.join(sorted(KINDS))}"
        )
    for name in schema.required:
        if name not in spec:
            raise InvalidEntity(f"{kind}: spec.{name} is required")
    for name, value in spec.items():
        shape_of = schema.required.get(name) or schema.optional.get(name)
        if shape_of is not None:
            _check_shape(kind, name, value, shape_of)
    if kind.lower() == "location":
        _check_location(spec)
    if kind.lower() == "template":
        for position, step in enumerate(spec["steps"]):
            if not isinstance(step, Mapping) or not isinstance(step.get("action"), str):
                raise InvalidEntity(f"Template: spec.steps[{position}] needs an action")


def _check_shape(kind: str, name: str, value: object, shape: str) -> None:
    valid = {
        STRING: isinstance(value, str) and bool(value),
        STRINGS: isinstance(value, list) and all(isinstance(v, str) and v for v in value),
        OBJECT: isinstance(value, Mapping),
        LIST: isinstance(value, list),
        OBJECT_OR_LIST: isinstance(value, Mapping | list),
    }[shape]
    if not valid:
        expected = {
            STRING: "a non-empty string",
            STRINGS: "a list of non-empty strings",
            OBJECT: "a mapping",
            LIST: "a list",
            OBJECT_OR_LIST: "a mapping or a list",
        }[shape]
        raise InvalidEntity(f"{kind}: spec.{name} must be {expected}")


def _check_location(spec: Mapping[str, Any]) -> None:
    if spec.get("presence", "required") not in ("required", "optional"):
        raise InvalidEntity("Location: spec.presence must be 'required' or 'optional'")
