"""The append-only audit log: who did what to which tenant, from the admin API and beyond."""

from control_plane.audit.service import entries, record

__all__ = ["entries", "record"]
