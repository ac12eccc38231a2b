"""The tenant lifecycle: which state may follow which."""

from __future__ import annotations

import enum


class TenantState(enum.StrEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETING = "deleting"
    DELETED = "deleted"
    FAILED = "failed"


ALLOWED_TRANSITIONS: dict[TenantState, frozenset[TenantState]] = {
    TenantState.PENDING: frozenset({TenantState.PROVISIONING, TenantState.DELETING}),
    TenantState.PROVISIONING: frozenset(
        {TenantState.ACTIVE, TenantState.FAILED, TenantState.SUSPENDED, TenantState.DELETING}
    ),
    TenantState.ACTIVE: frozenset(
        {TenantState.SUSPENDED, TenantState.PROVISIONING, TenantState.DELETING}
    ),
    TenantState.SUSPENDED: frozenset(
        {TenantState.ACTIVE, TenantState.PROVISIONING, TenantState.DELETING}
    ),
    TenantState.DELETING: frozenset({TenantState.DELETED, TenantState.FAILED}),
    # Restored within the retention period, before its data is purged.
    TenantState.DELETED: frozenset({TenantState.PROVISIONING}),
    # A failed tenant is left only by a retry (or by giving up on it).
    TenantState.FAILED: frozenset({TenantState.PROVISIONING, TenantState.DELETING}),
}


class IllegalTransition(Exception):
    def __init__(self, current: TenantState, target: TenantState) -> None:
        super().__init__(f"a tenant cannot go from {current} to {target}")
        self.current = current
        self.target = target


def check_transition(current: TenantState, target: TenantState) -> None:
    if target not in ALLOWED_TRANSITIONS[current]:
        raise IllegalTransition(current, target)
