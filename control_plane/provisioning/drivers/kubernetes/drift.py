"""Telling whether live objects still say what we applied, without writing anything.

The comparison is a subset check: every field we send must hold the same value in the
live object; fields the API server or controllers add (defaults, status, managed fields)
are ignored. Empty maps and lists we send compare equal to absent ones, because the API
server drops them.

This compares with the live objects rather than with a stored hash of what was last
applied: a hash tells that our intent changed, but not that someone edited or deleted an
object since. The reads cost no writes, so an unchanged tenant still costs no writes.
"""

from __future__ import annotations

import base64
from typing import Any

from control_plane.provisioning.drivers.kubernetes.manifests import Manifest


def _empty(value: Any) -> bool:
    return value is None or value in ({}, [])


def differs(desired: Any, live: Any) -> bool:
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return not (_empty(desired) and _empty(live))
        return any(
            differs(value, live.get(key))
            for key, value in desired.items()
            if not (_empty(value) and _empty(live.get(key)))
        )
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return not (_empty(desired) and _empty(live))
        return any(differs(d, v) for d, v in zip(desired, live, strict=True))
    return str(desired) != str(live)


def object_drifted(desired: Manifest, live: dict[str, Any]) -> bool:
    """Whether someone changed what we own in this object."""
    if desired["kind"] == "Secret":
        # Only the keys: the values are credentials we do not regenerate to compare.
        wanted = set(desired.get("stringData", {}))
        present = {k for k, v in (live.get("data") or {}).items() if base64.b64decode(v)}
        return not wanted <= present or differs(desired["metadata"], live.get("metadata"))
    comparable = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}
    return differs(comparable, live)
