"""Reading and validating `catalog-info.yaml` entity descriptors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from tenant_runtime.catalog.refs import DEFAULT_NAMESPACE, EntityRef

# Backstage's default validators (reference 1.3).
KIND_PATTERN = re.compile(r"^[a-zA-Z][a-z0-9A-Z]*$")
NAME_PATTERN = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
API_VERSION_SUFFIX_PATTERN = re.compile(r"^[a-z0-9A-Z]+$")
DNS_LABEL_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_PART_LENGTH = 63
MAX_DNS_SUBDOMAIN_LENGTH = 253
SERVER_OWNED_ROOT_KEYS = ("relations", "status")


class InvalidEntity(ValueError):
    """A descriptor that Backstage would reject; the message says which field and why."""


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
    spec = document.get("spec", {})
    if not isinstance(spec, Mapping):
        raise InvalidEntity("spec must be a mapping")
    body = dict(document)
    body["metadata"] = {**metadata, "namespace": namespace}
    if "spec" in document:
        body["spec"] = dict(spec)
    return EntityDescriptor(EntityRef.of(kind, namespace, name), body)


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
