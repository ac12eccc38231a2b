"""Entity references: `[<kind>:][<namespace>/]<name>`, canonically lower-cased."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NAMESPACE = "default"


class InvalidEntityRef(ValueError):
    """A reference that cannot be resolved to kind, namespace and name."""


@dataclass(frozen=True)
class EntityRef:
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, kind: str, namespace: str, name: str) -> EntityRef:
        return cls(kind.lower(), namespace.lower(), name.lower())

    def __str__(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}"


def parse_entity_ref(
    ref: str, *, default_kind: str | None, default_namespace: str = DEFAULT_NAMESPACE
) -> EntityRef:
    """Resolve a reference found in a descriptor, as Backstage's `parseEntityRef` does."""
    kind: str | None
    colon = ref.find(":")
    slash = ref.find("/")
    # A `/` before the first `:` means the ref has no kind (the colon is in the name).
    if colon == -1 or (slash != -1 and slash < colon):
        kind, rest = default_kind, ref
    else:
        kind, rest = ref[:colon], ref[colon + 1 :]
    namespace, name = rest.split("/", 1) if "/" in rest else (default_namespace, rest)
    if kind is None:
        raise InvalidEntityRef(f"entity ref {ref!r} has no kind and none can be assumed")
    if not kind or not namespace or not name:
        raise InvalidEntityRef(f"entity ref {ref!r} has an empty kind, namespace or name")
    return EntityRef.of(kind, namespace, name)
