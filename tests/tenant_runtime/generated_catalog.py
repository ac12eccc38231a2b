"""A generated catalog with the shape of a real organization, for benchmarks and scale tests.

Per 1,000 entities: ~10 groups, ~100 users (each a member of one group), ~5 domains,
~20 systems, ~500 components, ~215 APIs and ~150 resources. Components belong to a
system, are owned by a group, provide and consume APIs and depend on resources, so the
relations table holds several rows per entity, as in a real catalog.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

LIFECYCLES = ["production", "experimental", "deprecated"]
COMPONENT_TYPES = ["service", "website", "library"]
API_TYPES = ["openapi", "grpc", "asyncapi", "graphql"]
RESOURCE_TYPES = ["database", "s3-bucket", "queue"]
TAGS = ["java", "python", "go", "typescript", "kotlin", "rust", "data", "web", "internal"]
WORDS = ["orders", "billing", "search", "payments", "catalog", "ledger", "shipping", "auth"]


def generate(total: int, seed: int = 7) -> list[dict[str, Any]]:
    """`total` entities with owners, systems, APIs, dependencies and memberships."""
    rng = random.Random(seed)
    groups = max(2, total // 100)
    users = max(2, total // 10)
    domains = max(1, total // 200)
    systems = max(1, total // 50)
    apis = max(1, total * 215 // 1000)
    resources = max(1, total * 150 // 1000)
    components = max(1, total - groups - users - domains - systems - apis - resources)

    def entity(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
        word = rng.choice(WORDS)
        return {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": kind,
            "metadata": {
                "name": name,
                "title": f"{word.title()} {name}",
                "description": f"The {word} {kind.lower()} {name}",
                "tags": rng.sample(TAGS, 2),
                **metadata,
            },
            "spec": spec,
        }

    def group(index: int) -> str:
        return f"team-{index}"

    out: list[dict[str, Any]] = []
    for i in range(groups):
        spec: dict[str, Any] = {"type": "team", "children": []}
        if i:
            spec["parent"] = group((i - 1) // 10)
        out.append(entity("Group", group(i), spec))
    for i in range(users):
        out.append(entity("User", f"user-{i}", {"memberOf": [group(rng.randrange(groups))]}))
    for i in range(domains):
        out.append(entity("Domain", f"domain-{i}", {"owner": group(rng.randrange(groups))}))
    for i in range(systems):
        spec = {"owner": group(rng.randrange(groups)), "domain": f"domain-{rng.randrange(domains)}"}
        out.append(entity("System", f"system-{i}", spec))
    for i in range(apis):
        spec = {
            "type": rng.choice(API_TYPES),
            "lifecycle": rng.choice(LIFECYCLES),
            "owner": group(rng.randrange(groups)),
            "system": f"system-{rng.randrange(systems)}",
            "definition": f"openapi: 3.0.0\ninfo:\n  title: api-{i}\n  version: 1.0.0\n",
        }
        out.append(entity("API", f"api-{i}", spec))
    for i in range(resources):
        spec = {
            "type": rng.choice(RESOURCE_TYPES),
            "owner": group(rng.randrange(groups)),
            "system": f"system-{rng.randrange(systems)}",
        }
        out.append(entity("Resource", f"resource-{i}", spec))
    for i in range(components):
        spec = {
            "type": rng.choice(COMPONENT_TYPES),
            "lifecycle": rng.choice(LIFECYCLES),
            "owner": group(rng.randrange(groups)),
            "system": f"system-{rng.randrange(systems)}",
            "providesApis": [f"api-{rng.randrange(apis)}"],
            "consumesApis": [f"api-{rng.randrange(apis)}" for _ in range(2)],
            "dependsOn": [f"resource:resource-{rng.randrange(resources)}"],
        }
        out.append(entity("Component", f"component-{i}", spec))
    return out


def write_catalog(entities: list[dict[str, Any]], root: Path, per_file: int = 1000) -> Path:
    """Files of `per_file` entities each and a root Location naming them; returns the root."""
    root.mkdir(parents=True, exist_ok=True)
    names = []
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for start in range(0, len(entities), per_file):
        name = f"part-{start // per_file:04d}.yaml"
        (root / name).write_text(
            yaml.dump_all(entities[start : start + per_file], Dumper=dumper, sort_keys=False)
        )
        names.append(f"./{name}")
    location = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Location",
        "metadata": {"name": "generated-catalog"},
        "spec": {"targets": names},
    }
    path = root / "catalog-info.yaml"
    path.write_text(yaml.safe_dump(location, sort_keys=False))
    return path
