"""What operators see of the fleet: filtered, sorted, paged lists; one tenant; a summary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.core.errors import ValidationFailed
from control_plane.fleet.models import RolloutTarget
from control_plane.identity.models import Organization
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant

HEALTH = ("failing", "progressing", "healthy", "stopped")

# Failing first: the summary and the default sort put what needs an operator on top.
health = case(
    (Tenant.state == TenantState.FAILED, "failing"),
    (
        Tenant.state.in_([TenantState.SUSPENDED, TenantState.DELETED]),
        "stopped",
    ),
    (
        and_(Tenant.state == TenantState.ACTIVE, Tenant.observed_generation >= Tenant.generation),
        "healthy",
    ),
    else_="progressing",
)
_health_rank = case(
    (Tenant.state == TenantState.FAILED, 0),
    (Tenant.state.in_([TenantState.SUSPENDED, TenantState.DELETED]), 3),
    (
        and_(Tenant.state == TenantState.ACTIVE, Tenant.observed_generation >= Tenant.generation),
        2,
    ),
    else_=1,
)

SORTS: dict[str, Any] = {
    "created_at": Tenant.created_at,
    "slug": Tenant.slug,
    "state": Tenant.state,
    "plan": Tenant.plan,
    "release": Tenant.runtime_release,
    "region": Tenant.region,
    "last_active_at": Tenant.last_active_at,
    "health": _health_rank,
}

# Sections of a tenant's detail that other domains fill (billing: usage and subscription,
# the marketplace: plugins). A section not registered shows as None.
DETAIL_SECTIONS: dict[str, Callable[[Session, Tenant], Any]] = {}
DEFAULT_SECTIONS = ("usage", "subscription", "plugins")


@dataclass(frozen=True, slots=True)
class TenantFilter:
    state: tuple[str, ...] = ()
    plan: tuple[str, ...] = ()
    release: tuple[str, ...] = ()
    health: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    cohort: tuple[str, ...] = ()
    slug_contains: str | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    active_after: dt.datetime | None = None
    active_before: dt.datetime | None = None
    # A rollout's targets exclude pinned tenants; the fleet list shows them unless asked.
    pinned: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> TenantFilter:
        """From the JSON a bulk action or a rollout carries; unknown keys are an error."""
        known = set(cls.__dataclass_fields__) - {"extra"}
        unknown = sorted(set(document) - known)
        if unknown:
            raise ValidationFailed({"filter": f"unknown filter keys: {', '.join(unknown)}"})
        values: dict[str, Any] = {}
        for key, value in document.items():
            if value is None:
                continue
            if key in {"created_after", "created_before", "active_after", "active_before"}:
                values[key] = _timestamp(key, value)
            elif key in {"slug_contains", "pinned"}:
                values[key] = value
            else:
                values[key] = tuple([value] if isinstance(value, str) else value)
        made = cls(**values)
        made.check()
        return made

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            if key == "extra" or value in ((), None):
                continue
            out[key] = (
                list(value)
                if isinstance(value, tuple)
                else value.isoformat()
                if isinstance(value, dt.datetime)
                else value
            )
        return out

    def check(self) -> None:
        errors = {}
        states = {s.value for s in TenantState}
        if bad := sorted(set(self.state) - states):
            errors["state"] = f"state: unknown {', '.join(bad)}; one of {', '.join(sorted(states))}"
        if bad := sorted(set(self.health) - set(HEALTH)):
            errors["health"] = f"health: unknown {', '.join(bad)}; one of {', '.join(HEALTH)}"
        if errors:
            raise ValidationFailed(errors)

    def conditions(self) -> list[ColumnElement[bool]]:  # noqa: PLR0912 - one branch per filter
        where: list[ColumnElement[bool]] = []
        if self.state:
            where.append(Tenant.state.in_([TenantState(s) for s in self.state]))
        if self.plan:
            where.append(Tenant.plan.in_(self.plan))
        if self.release:
            where.append(Tenant.runtime_release.in_(self.release))
        if self.health:
            where.append(health.in_(self.health))
        if self.region:
            where.append(Tenant.region.in_(self.region))
        if self.cohort:
            where.append(Tenant.rollout_cohort.in_(self.cohort))
        if self.slug_contains:
            where.append(Tenant.slug.contains(self.slug_contains, autoescape=True))
        if self.created_after:
            where.append(Tenant.created_at >= self.created_after)
        if self.created_before:
            where.append(Tenant.created_at < self.created_before)
        if self.active_after:
            where.append(Tenant.last_active_at >= self.active_after)
        if self.active_before:
            where.append(Tenant.last_active_at < self.active_before)
        if self.pinned is True:
            where.append(Tenant.pinned_release.is_not(None))
        elif self.pinned is False:
            where.append(Tenant.pinned_release.is_(None))
        return where

    def select(self) -> Select[tuple[Tenant]]:
        return select(Tenant).where(*self.conditions())


def _timestamp(key: str, value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ValidationFailed(
                {key: f"{key}: an ISO-8601 time, e.g. 2026-11-01T00:00:00Z"}
            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


def list_tenants(
    session: Session,
    where: TenantFilter,
    *,
    sort: str = "health",
    page: int = 1,
    page_size: int = 50,
) -> Page:
    key = sort.removeprefix("-")
    if key not in SORTS:
        raise ValidationFailed(
            {"sort": f"sort: one of {', '.join(sorted(SORTS))} (- for descending)"}
        )
    if page < 1 or not 1 <= page_size <= 500:
        raise ValidationFailed({"page": "page starts at 1; page_size is 1 to 500"})
    column = SORTS[key]
    order = column.desc() if sort.startswith("-") else column.asc()
    conditions = where.conditions()
    total = session.scalar(select(func.count()).select_from(Tenant).where(*conditions)) or 0
    rows = session.execute(
        select(Tenant, health.label("health"))
        .where(*conditions)
        .order_by(order, Tenant.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return Page([row_document(t, h) for t, h in rows], total, page, page_size)


def row_document(tenant: Tenant, health_: str) -> dict[str, Any]:
    return {
        "id": str(tenant.id),
        "slug": tenant.slug,
        "state": str(tenant.state),
        "health": health_,
        "plan": tenant.plan,
        "release": tenant.runtime_release,
        "pinned_release": tenant.pinned_release,
        "cohort": tenant.rollout_cohort,
        "region": tenant.region,
        "size_tier": tenant.size_tier,
        "suspension_holds": list(tenant.suspension_holds),
        "created_at": tenant.created_at.isoformat(),
        "last_active_at": tenant.last_active_at.isoformat() if tenant.last_active_at else None,
        "url": tenant.runtime_url,
    }


def health_of(session: Session, tenant: Tenant) -> str:
    value = session.scalar(select(health).where(Tenant.id == tenant.id))
    return str(value)


def tenant_detail(session: Session, tenant: Tenant) -> dict[str, Any]:
    organization = session.get(Organization, tenant.organization_id)
    sections = dict.fromkeys(DEFAULT_SECTIONS)
    sections.update({name: provide(session, tenant) for name, provide in DETAIL_SECTIONS.items()})
    targets = session.scalars(
        select(RolloutTarget)
        .where(RolloutTarget.tenant_id == tenant.id)
        .order_by(RolloutTarget.created_at.desc())
        .limit(10)
    )
    return {
        **row_document(tenant, health_of(session, tenant)),
        "organization": {
            "id": str(tenant.organization_id),
            "name": organization.name if organization else None,
        },
        "spec": {
            "plan": tenant.plan,
            "runtime_release": tenant.runtime_release,
            "pinned_release": tenant.pinned_release,
            "size_tier": tenant.size_tier,
            "suspended": tenant.suspended,
            "deletion_requested_at": _iso(tenant.deletion_requested_at),
            "generation": tenant.generation,
        },
        "status": {
            "state": str(tenant.state),
            "observed_generation": tenant.observed_generation,
            "url": tenant.runtime_url,
            "failure_reason": tenant.failure_reason,
            "ready_at": _iso(tenant.ready_at),
            "purge_after": _iso(tenant.purge_after),
            "purged_at": _iso(tenant.purged_at),
        },
        "conditions": tenant.conditions,
        "events": [
            {
                "at": e.created_at.isoformat(),
                "from_state": str(e.from_state) if e.from_state else None,
                "to_state": str(e.to_state),
                "reason": e.reason,
                "message": e.message,
                "actor": e.actor,
            }
            for e in tenants.events(session, tenant.id)
        ],
        "rollouts": [
            {
                "rollout_id": str(t.rollout_id),
                "wave": t.wave,
                "state": str(t.state),
                "previous_release": t.previous_release,
                "detail": t.detail,
            }
            for t in targets
        ],
        "audit": [audit.document(e) for e in audit.entries(session, tenant_id=tenant.id, limit=20)],
        **sections,
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def summary(session: Session, *, failing_limit: int = 20) -> dict[str, Any]:
    def counts(column: Any) -> dict[str, int]:
        rows = session.execute(select(column, func.count()).group_by(column)).all()
        return {str(key): int(count) for key, count in sorted(rows, key=lambda r: str(r[0]))}

    failing = session.execute(
        select(Tenant, health.label("health"))
        .where(health.in_(["failing", "progressing"]))
        .order_by(_health_rank, Tenant.updated_at.desc())
        .limit(failing_limit)
    ).all()
    by_state = counts(Tenant.state)
    return {
        "total": sum(by_state.values()),
        "by_health": counts(health),
        "by_state": by_state,
        "by_release": counts(Tenant.runtime_release),
        "by_plan": counts(Tenant.plan),
        "needs_attention": [
            {**row_document(t, h), "failure_reason": t.failure_reason} for t, h in failing
        ],
    }
