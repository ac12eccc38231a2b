"""Reading and validating `catalog-info.yaml` entity descriptors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from tenant_runtime.catalog.errors import InvalidEntity
from tenant_runtime.catalog.kinds import check_kind_spec
from tenant_runtime.catalog.refs import DEFAULT_NAMESPACE, EntityRef

__all__ = ["EntityDescriptor", "InvalidEntity", "parse_descriptors", "validate_descriptor"]

# Backstage's default validators (reference 1.3).
KIND_PATTERN = re.compile(r"^[a-zA-Z][a-z0-9A-Z]*$")
NAME_PATTERN = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
API_VERSION_SUFFIX_PATTERN = re.compile(r"^[a-z0-9A-Z]+$")
DNS_LABEL_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_PART_LENGTH = 63
MAX_DNS_SUBDOMAIN_LENGTH = 253
SERVER_OWNED_ROOT_KEYS = ("relations", "status")
KNOWN_ROOT_KEYS = frozenset({"apiVersion", "kind", "metadata", "spec"})
# Backstage's ReservedFieldsEntityPolicy: these may not be keys of spec, labels or annotations.
RESERVED_KEYS = frozenset(
    {
        "apiVersion",
        "kind",
        "uid",
        "etag",
        "generation",
        "name",
        "namespace",
        "labels",
        "annotations",
        "spec",
    }
)
TAG_PATTERN = re.compile(r"^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$")


@dataclass(frozen=True)
class EntityDescriptor:
    """A validated descriptor and its canonical ref; `body` has its namespace filled in."""

    ref: EntityRef
    body: dict[str, Any]


def parse_descriptors(text: str, *, source: str) -> list[EntityDescriptor]:
    """Parse a multi-document `catalog-info.yaml`; empty documents are skipped."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise InvalidEntity(f"{source}: not valid YAML: {error}") from error
    descriptors: list[EntityDescriptor] = []
    seen: set[EntityRef] = set()
    for position, document in enumerate(documents, start=1):
        if document is None:
            continue
        try:
            descriptor = validate_descriptor(document)
        except InvalidEntity as error:
            raise InvalidEntity(f"{source}, document {position}: {error}") from error
        if descriptor.ref in seen:
            raise InvalidEntity(
                f"{source}, document {position}: entity {descriptor.ref} is defined twice"
            )
        seen.add(descriptor.ref)
        descriptors.append(descriptor)
    return descriptors


def validate_descriptor(document: object) -> EntityDescriptor:
    """Check the envelope and naming rules every Backstage entity must follow."""
    if not isinstance(document, Mapping):
        raise InvalidEntity("an entity must be a mapping with apiVersion, kind and metadata")
    for key in SERVER_OWNED_ROOT_KEYS:
        if key in document:
            raise InvalidEntity(f"{key!r} is computed by the catalog and must not be given")
    foreign = sorted(str(key) for key in document if key not in KNOWN_ROOT_KEYS)
    if foreign:
        raise InvalidEntity(f"unknown root field(s) {', '.join(foreign)}")
    api_version = _required_string(document, "apiVersion")
    _check_api_version(api_version)
    kind = _required_string(document, "kind")
    _check_format("kind", kind, KIND_PATTERN)
    metadata = document.get("metadata")
    if not isinstance(metadata, Mapping):
        raise InvalidEntity("metadata must be a mapping with at least a name")
    name = _required_string(metadata, "name", path="metadata.name")
    _check_format("metadata.name", name, NAME_PATTERN)
    namespace = metadata.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str):
        raise InvalidEntity("metadata.namespace must be a string")
    _check_format("metadata.namespace", namespace, NAMESPACE_PATTERN)
    _check_metadata(metadata)
    spec = document.get("spec", {})
    if not isinstance(spec, Mapping):
        raise InvalidEntity("spec must be a mapping")
    _check_reserved("spec", spec)
    check_kind_spec(api_version, kind, spec)
    body = dict(document)
    body["metadata"] = {**metadata, "namespace": namespace}
    if "spec" in document:
        body["spec"] = dict(spec)
    return EntityDescriptor(EntityRef.of(kind, namespace, name), body)


def _check_metadata(metadata: Mapping[str, Any]) -> None:
    for field in ("title", "description"):
        if field in metadata and not isinstance(metadata[field], str):
            raise InvalidEntity(f"metadata.{field} must be a string")
    for field in ("labels", "annotations"):
        values = metadata.get(field, {})
        if not isinstance(values, Mapping):
            raise InvalidEntity(f"metadata.{field} must be a mapping of strings")
        _check_reserved(f"metadata.{field}", values)
        for key, value in values.items():
            _check_qualified_key(f"metadata.{field}", str(key))
            if not isinstance(value, str):
                raise InvalidEntity(f"metadata.{field}.{key} must be a string")
            if (
                field == "labels"
                and value
                and (len(value) > MAX_PART_LENGTH or not NAME_PATTERN.match(value))
            ):
                raise InvalidEntity(f"metadata.labels.{key} value {value!r} is not valid")
    _check_tags(metadata)
    _check_links(metadata)


def _check_tags(metadata: Mapping[str, Any]) -> None:
    tags = metadata.get("tags", [])
    if not isinstance(tags, list):
        raise InvalidEntity("metadata.tags must be a list of strings")
    for tag in tags:
        if not isinstance(tag, str) or len(tag) > MAX_PART_LENGTH or not TAG_PATTERN.match(tag):
            raise InvalidEntity(
                f"metadata.tags: {tag!r} is not valid: lower-case letters, digits, "
                f"'+', '#' or ':' joined by single dashes, at most {MAX_PART_LENGTH} characters"
            )


def _check_links(metadata: Mapping[str, Any]) -> None:
    links = metadata.get("links", [])
    if not isinstance(links, list):
        raise InvalidEntity("metadata.links must be a list")
    for position, link in enumerate(links):
        if not isinstance(link, Mapping) or not isinstance(link.get("url"), str):
            raise InvalidEntity(f"metadata.links[{position}] needs a url")
        parsed = urlsplit(link["url"])
        if not parsed.scheme or not (parsed.netloc or parsed.path):
            raise InvalidEntity(f"metadata.links[{position}].url {link['url']!r} is not a URL")
        for field in ("title", "icon", "type"):
            if field in link and (not isinstance(link[field], str) or not link[field]):
                raise InvalidEntity(f"metadata.links[{position}].{field} must be a string")


def _check_reserved(path: str, mapping: Mapping[str, Any]) -> None:
    for key in mapping:
        if key in RESERVED_KEYS:
            raise InvalidEntity(f"{path} may not hold the reserved key {key!r}")


def _check_qualified_key(path: str, key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (
        not prefix
        or len(prefix) > MAX_DNS_SUBDOMAIN_LENGTH
        or not all(DNS_LABEL_PATTERN.match(label) for label in prefix.split("."))
    ):
        raise InvalidEntity(f"{path} key {key!r} has an invalid prefix: it must be a DNS name")
    if len(name) > MAX_PART_LENGTH or not NAME_PATTERN.match(name):
        raise InvalidEntity(f"{path} key {key!r} is not valid")


def _required_string(mapping: Mapping[str, Any], key: str, *, path: str | None = None) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidEntity(f"{path or key} is required and must be a non-empty string")
    return value


def _check_format(path: str, value: str, pattern: re.Pattern[str]) -> None:
    if len(value) > MAX_PART_LENGTH or not pattern.match(value):
        raise InvalidEntity(
            f"{path} {value!r} is not valid: it must match {pattern.pattern} "
            f"and be at most {MAX_PART_LENGTH} characters"
        )


def _check_api_version(api_version: str) -> None:
    prefix, _, suffix = api_version.rpartition("/")
    if "/" in api_version and (
        len(prefix) > MAX_DNS_SUBDOMAIN_LENGTH
        or not all(DNS_LABEL_PATTERN.match(label) for label in prefix.split("."))
    ):
        raise InvalidEntity(
            f"apiVersion {api_version!r} is not valid: its group must be a DNS subdomain"
        )
    _check_format("apiVersion", suffix, API_VERSION_SUFFIX_PATTERN)
