"""Runtime releases: what tenants can run. Services flush; callers commit."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.errors import Conflict, NotFound, ValidationFailed
from control_plane.fleet.models import RuntimeRelease

# An OCI reference: name[:tag][@digest], lower-case path components.
_IMAGE = re.compile(
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")


def image_of(session: Session, version: str) -> str:
    """The registered image for ``version``; empty when the version was never registered."""
    return (
        session.scalar(select(RuntimeRelease.image).where(RuntimeRelease.version == version)) or ""
    )


def get_release(session: Session, version: str) -> RuntimeRelease:
    release = session.scalar(select(RuntimeRelease).where(RuntimeRelease.version == version))
    if release is None:
        raise NotFound(f"no runtime release {version!r}; register it first")
    return release


def register(
    session: Session,
    *,
    version: str,
    image: str,
    notes: str = "",
    plugin_compatibility: dict[str, Any] | None = None,
    actor: str,
) -> RuntimeRelease:
    errors = {}
    if not _VERSION.match(version):
        errors["version"] = "version: letters, digits and . + _ - only, at most 64 characters"
    if len(image) > 255 or not _IMAGE.match(image):
        errors["image"] = "image: a full image reference such as registry.example/runtime:1.2.0"
    if errors:
        raise ValidationFailed(errors)
    if session.scalar(select(RuntimeRelease.id).where(RuntimeRelease.version == version)):
        raise Conflict(f"release {version} is already registered; releases never change")
    release = RuntimeRelease(
        version=version,
        image=image,
        notes=notes,
        plugin_compatibility=plugin_compatibility or {},
        created_by=actor,
    )
    session.add(release)
    session.flush()
    return release


def listing(session: Session) -> list[RuntimeRelease]:
    return list(session.scalars(select(RuntimeRelease).order_by(RuntimeRelease.created_at.desc())))


def document(release: RuntimeRelease) -> dict[str, Any]:
    return {
        "id": str(release.id),
        "version": release.version,
        "image": release.image,
        "notes": release.notes,
        "plugin_compatibility": release.plugin_compatibility,
        "created_by": release.created_by,
        "created_at": release.created_at.isoformat(),
    }
