"""Reading locations into entities: `url:` over HTTP(S) from allowed hosts, `file:` from
configured roots, multi-document YAML, and Location entities that point at more files.

Processing one registered location is synchronous and stores its whole tree in one unit
of work: emitted entities are upserted (first owner wins), entities the location no
longer emits are orphaned, and read or validation errors land in the emitting Location
entity's `status.items` while the entities it emitted before are kept.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import structlog
import yaml
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tenant_runtime.catalog.descriptors import EntityDescriptor, validate_descriptor
from tenant_runtime.catalog.errors import CatalogInputError, InvalidEntity
from tenant_runtime.catalog.models import EntityRecord
from tenant_runtime.catalog.relations import relations_of
from tenant_runtime.catalog.store import CatalogStore
from tenant_runtime.core.settings import RuntimeSettings

logger = structlog.get_logger(__name__)

MANAGED_BY_LOCATION = "backstage.io/managed-by-location"
MANAGED_BY_ORIGIN_LOCATION = "backstage.io/managed-by-origin-location"
SOURCE_LOCATION = "backstage.io/source-location"
VIEW_URL = "backstage.io/view-url"
EDIT_URL = "backstage.io/edit-url"
PROCESSING_ERROR_TYPE = "backstage.io/catalog-processing"
LOCATION_TYPES = ("url", "file")
MAX_DEPTH = 16
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_MESSAGE_LENGTH = 5000
ORPHAN_CHUNK = 500
ANALYZE_AFTER = 1000
# libyaml's loader where it is built in: ingesting large files is mostly YAML parsing.
YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LocationReadError(Exception):
    """A target that could not be read; `name` follows Backstage's error names."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def location_key(type_: str, target: str) -> str:
    return f"{type_}:{target}"


def generated_location_name(type_: str, target: str) -> str:
    digest = hashlib.sha1(location_key(type_, target).encode(), usedforsecurity=False)
    return f"generated-{digest.hexdigest()}"


def generated_location_ref(type_: str, target: str) -> str:
    return f"location:default/{generated_location_name(type_, target)}"


def generated_location_entity(
    type_: str, target: str, presence: str = "required"
) -> dict[str, Any]:
    key = location_key(type_, target)
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Location",
        "metadata": {
            "name": generated_location_name(type_, target),
            "namespace": "default",
            "annotations": {MANAGED_BY_LOCATION: key, MANAGED_BY_ORIGIN_LOCATION: key},
        },
        "spec": {"type": type_, "target": target, "presence": presence},
    }


class LocationReader:
    """Reads `url:` and `file:` targets within what the runtime's settings allow."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings

    def check(self, type_: str, target: str) -> None:
        """Refuse, with a message saying why, a target this runtime may not read."""
        if type_ == "url":
            parts = urlsplit(target)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise CatalogInputError(f"url location {target!r} must be an http(s) URL")
            if not self._host_allowed(parts.hostname, parts.port):
                raise CatalogInputError(
                    f"host {parts.netloc!r} is not in the catalog's allowed hosts "
                    "(BACKLOT_RUNTIME_CATALOG_URL_ALLOW_HOSTS)"
                )
            return
        if type_ == "file":
            if not os.path.isabs(target):
                raise CatalogInputError(f"file location {target!r} must be an absolute path")
            if self._root_of(target) is None:
                raise CatalogInputError(
                    f"file location {target!r} is outside the catalog's file roots "
                    "(BACKLOT_RUNTIME_CATALOG_FILE_ROOTS)"
                )
            return
        raise CatalogInputError(f"location type {type_!r} is not supported: use url or file")

    def _host_allowed(self, host: str, port: int | None) -> bool:
        host = host.lower()
        for allowed in self.settings.catalog_url_allow_hosts:
            allowed_host, _, allowed_port = allowed.lower().partition(":")
            if allowed_port and str(port or "") != allowed_port:
                continue
            if (
                fnmatch.fnmatchcase(host, allowed_host)
                if "*" in allowed_host
                else host == allowed_host
            ):
                return True
        return False

    def _root_of(self, path: str) -> Path | None:
        # Resolve links and `..` first, so a target cannot step outside its root.
        real = Path(os.path.realpath(path))
        for root in self.settings.catalog_file_roots:
            real_root = Path(os.path.realpath(root))
            if real == real_root or real_root in real.parents:
                return real_root
        return None

    def resolve(self, type_: str, base: str, target: str) -> str:
        """A target relative to the file that names it, as Backstage resolves it."""
        if type_ == "url":
            return urljoin(base, target)
        if os.path.isabs(target):
            return os.path.normpath(target)
        return os.path.normpath(os.path.join(os.path.dirname(base), target))

    def read(self, type_: str, target: str) -> list[tuple[str, str]]:
        """[(concrete target, text)]: one file, or every file a `file:` glob matches."""
        self.check(type_, target)
        if type_ == "url":
            return [(target, self._read_url(target))]
        if glob.has_magic(target):
            paths = sorted(glob.glob(target, recursive=True))
            return [(path, self._read_file(path)) for path in paths if os.path.isfile(path)]
        return [(target, self._read_file(target))]

    def _read_url(self, target: str) -> str:
        try:
            # Redirects are not followed: they could lead to a host that is not allowed.
            with httpx.stream(
                "GET",
                target,
                timeout=self.settings.catalog_url_read_timeout_seconds,
                follow_redirects=False,
            ) as response:
                if response.status_code == 404:
                    raise LocationReadError(
                        "NotFoundError", f"{target} could not be read: not found"
                    )
                if response.status_code != 200:
                    raise LocationReadError(
                        "Error", f"{target} could not be read: HTTP {response.status_code}"
                    )
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_FILE_BYTES:
                        raise LocationReadError("Error", f"{target} is larger than 16 MiB")
        except httpx.HTTPError as error:
            raise LocationReadError(
                "Error", f"{target} could not be read: {type(error).__name__}"
            ) from None
        return body.decode("utf-8", errors="replace")

    def _read_file(self, target: str) -> str:
        if self._root_of(target) is None:
            raise LocationReadError("NotAllowedError", f"{target} is outside the file roots")
        try:
            with open(target, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise LocationReadError("NotFoundError", f"{target} does not exist") from None
        except OSError as error:
            raise LocationReadError(
                "Error", f"{target} could not be read: {error.strerror}"
            ) from None
        if len(data) > MAX_FILE_BYTES:
            raise LocationReadError("Error", f"{target} is larger than 16 MiB")
        return data.decode("utf-8", errors="replace")


@dataclass
class ProcessedLocation:
    """Everything one registered location emits, before it is stored."""

    key: str
    entities: dict[str, EntityDescriptor] = field(default_factory=dict)
    parents: dict[str, str | None] = field(default_factory=dict)
    errors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Files that failed: what they emitted before is kept, not orphaned.
    failed_sources: set[str] = field(default_factory=set)

    def add_error(self, entity_ref: str, name: str, message: str) -> None:
        message = message[:MAX_MESSAGE_LENGTH]
        self.errors.setdefault(entity_ref, []).append(
            {
                "type": PROCESSING_ERROR_TYPE,
                "level": "error",
                "message": f"{name}: {message}",
                "error": {"name": name, "message": message},
            }
        )


def process_location(
    reader: LocationReader, type_: str, target: str, presence: str = "required"
) -> ProcessedLocation:
    """Read a location and every location it names, without storing anything."""
    key = location_key(type_, target)
    result = ProcessedLocation(key)
    root = validate_descriptor(generated_location_entity(type_, target, presence))
    result.entities[str(root.ref)] = root
    result.parents[str(root.ref)] = None
    queue: list[tuple[EntityDescriptor, str, str, int]] = [(root, type_, target, 0)]
    while queue:
        location, base_type, base, depth = queue.pop(0)
        ref = str(location.ref)
        if depth >= MAX_DEPTH:
            result.add_error(ref, "InputError", "locations are nested too deeply")
            continue
        spec = location.body.get("spec", {})
        child_type = spec.get("type") or base_type
        targets = [t for t in [spec.get("target"), *(spec.get("targets") or [])] if t]
        for child_target in targets:
            resolved = reader.resolve(child_type, base, str(child_target))
            try:
                files = reader.read(child_type, resolved)
            except CatalogInputError as error:
                result.add_error(ref, "InputError", str(error))
                result.failed_sources.add(location_key(child_type, resolved))
                continue
            except LocationReadError as error:
                result.failed_sources.add(location_key(child_type, resolved))
                if error.name == "NotFoundError" and spec.get("presence") == "optional":
                    continue
                result.add_error(ref, error.name, str(error))
                continue
            for concrete, content in files:
                for child in _entities_in(result, ref, child_type, concrete, content):
                    if child.ref.kind == "location":
                        queue.append((child, child_type, concrete, depth + 1))
    return result


def _entities_in(
    result: ProcessedLocation, parent_ref: str, type_: str, target: str, content: str
) -> list[EntityDescriptor]:
    source = location_key(type_, target)
    try:
        documents = list(yaml.load_all(content, Loader=YAML_LOADER))
    except yaml.YAMLError as error:
        result.add_error(parent_ref, "InputError", f"{source}: not valid YAML: {error}")
        result.failed_sources.add(source)
        return []
    emitted: list[EntityDescriptor] = []
    for position, document in enumerate(documents, start=1):
        if document is None:
            continue
        try:
            annotated = (
                _annotated(document, type_, target, result.key)
                if isinstance(document, dict)
                else document
            )
            descriptor = validate_descriptor(annotated)
            list(relations_of(descriptor))  # refs in spec must parse
        except InvalidEntity as error:
            result.add_error(parent_ref, "InputError", f"{source}, document {position}: {error}")
            result.failed_sources.add(source)
            continue
        ref = str(descriptor.ref)
        if ref in result.entities:
            result.add_error(
                parent_ref, "ConflictError", f"{source}: entity {ref} is emitted more than once"
            )
            continue
        result.entities[ref] = descriptor
        result.parents[ref] = parent_ref
        emitted.append(descriptor)
    return emitted


def _annotated(document: dict[str, Any], type_: str, target: str, origin: str) -> dict[str, Any]:
    """Add the managed-by and source annotations Backstage adds; the file's own values win."""
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        return document
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict):
        return document
    added = {MANAGED_BY_LOCATION: location_key(type_, target), MANAGED_BY_ORIGIN_LOCATION: origin}
    if type_ == "url":
        directory = target.rsplit("/", 1)[0] + "/"
        added |= {SOURCE_LOCATION: f"url:{directory}", VIEW_URL: target, EDIT_URL: target}
    return {**document, "metadata": {**metadata, "annotations": {**added, **annotations}}}


@dataclass(frozen=True)
class StoreOutcome:
    written: int
    conflicts: int
    orphaned: int


def store_location(
    session: Session,
    processed: ProcessedLocation,
    *,
    actor: str | None,
    orphan_strategy: str,
) -> StoreOutcome:
    """Store what a location emitted; flushes, the caller commits."""
    store = CatalogStore(session)
    descriptors = list(processed.entities.values())
    conflicts = store.upsert(
        descriptors, location_key=processed.key, parents=processed.parents, actor=actor
    )
    errors = {ref: list(items) for ref, items in processed.errors.items()}
    for conflict in conflicts:
        parent = processed.parents.get(conflict.entity_ref) or conflict.entity_ref
        errors.setdefault(parent, []).append(
            {
                "type": PROCESSING_ERROR_TYPE,
                "level": "error",
                "message": (
                    f"ConflictError: {conflict.entity_ref} is already managed by "
                    f"{conflict.owner or 'another source'}; the first source to register it wins"
                ),
                "error": {
                    "name": "ConflictError",
                    "message": f"conflicting entityRef {conflict.entity_ref}",
                },
            }
        )
    # Only refs first: a large location owns many entities and emits nearly all of them.
    owned_refs = session.scalars(
        select(EntityRecord.entity_ref).where(EntityRecord.location_key == processed.key)
    ).all()
    missing = [ref for ref in owned_refs if ref not in processed.entities]
    orphans = [
        record
        for start in range(0, len(missing), ORPHAN_CHUNK)
        for record in session.scalars(
            select(EntityRecord).where(
                EntityRecord.entity_ref.in_(missing[start : start + ORPHAN_CHUNK])
            )
        )
        if _source_of(record) not in processed.failed_sources
    ]
    if orphan_strategy == "delete":
        store.delete(orphans, actor=actor, location_key=processed.key)
    else:
        store.mark_orphans(orphans, actor=actor, location_key=processed.key)
    for ref in processed.entities:
        if ref in errors or ref.startswith("location:"):
            store.set_status(ref, errors.get(ref))
    if len(descriptors) >= ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
        # Fresh statistics after a bulk load: without them the planner guesses one row per
        # filter and picks nested loops over thousands (autovacuum would catch up later).
        session.execute(text("ANALYZE entities, entity_search, relations"))
    if conflicts or errors:
        logger.info(
            "location processed with errors",
            location=processed.key,
            conflicts=len(conflicts),
            entities_with_errors=len(errors),
        )
    return StoreOutcome(len(descriptors) - len(conflicts), len(conflicts), len(orphans))


def _source_of(record: EntityRecord) -> str | None:
    annotations = record.body.get("metadata", {}).get("annotations", {})
    value = annotations.get(MANAGED_BY_LOCATION)
    return value if isinstance(value, str) else None
