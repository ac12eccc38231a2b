"""What operators do to tenants, one at a time or over a filter. Services flush; callers commit.

Every action is recorded in the audit log in the same transaction as its effect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.core.errors import DomainError, ValidationFailed
from control_plane.fleet import releases
from control_plane.fleet.operators import Operator
from control_plane.fleet.views import TenantFilter
from control_plane.provisioning.drivers.kubernetes.manifests import SIZE_TIERS
from control_plane.provisioning.models import Operation
from control_plane.tenants import service as tenants
from control_plane.tenants.models import Tenant

COHORTS = ("early", "default", "late")


def _suspend(session: Session, tenant: Tenant, operator: Operator, params: dict[str, Any]) -> Any:
    return tenants.suspend(
        session,
        tenant,
        holder="operator",
        actor=operator.actor,
        reason=str(params.get("reason", "")),
    )


def _resume(session: Session, tenant: Tenant, operator: Operator, params: dict[str, Any]) -> Any:
    return tenants.resume(session, tenant, holder="operator", actor=operator.actor)


def _delete(session: Session, tenant: Tenant, operator: Operator, params: dict[str, Any]) -> Any:
    return tenants.request_deletion(
        session, tenant, actor=operator.actor, reason=str(params.get("reason", ""))
    )


def _restore(session: Session, tenant: Tenant, operator: Operator, params: dict[str, Any]) -> Any:
    return tenants.restore(session, tenant, actor=operator.actor)


def _reconcile(session: Session, tenant: Tenant, operator: Operator, params: dict[str, Any]) -> Any:
    return tenants.force_reconcile(session, tenant, actor=operator.actor)


def _size(session: Session, tenant: Tenant, operator: Operator, params: dict[str, Any]) -> Any:
    tier = params.get("size_tier")
    if tier not in SIZE_TIERS:
        raise ValidationFailed({"size_tier": f"size_tier: one of {', '.join(SIZE_TIERS)}"})
    return tenants.change_size_tier(session, tenant, str(tier), actor=operator.actor)


def _pin(session: Session, tenant: Tenant, operator: Operator, params: dict[str, Any]) -> Any:
    version = params.get("release")
    if version is not None:
        version = releases.get_release(session, str(version)).version
    return tenants.pin_release(session, tenant, version, actor=operator.actor)


def _cohort(session: Session, tenant: Tenant, operator: Operator, params: dict[str, Any]) -> Any:
    cohort = params.get("cohort")
    if cohort not in COHORTS:
        raise ValidationFailed({"cohort": f"cohort: one of {', '.join(COHORTS)}"})
    tenant.rollout_cohort = str(cohort)
    session.flush()
    return None


Action = Callable[[Session, Tenant, Operator, dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    run: Action
    scope: str
    # Keys of ``params`` worth keeping in the audit entry.
    audited: tuple[str, ...] = ()


ACTIONS: dict[str, ActionSpec] = {
    "suspend": ActionSpec(_suspend, "operate", ("reason",)),
    "resume": ActionSpec(_resume, "operate"),
    "delete": ActionSpec(_delete, "operate", ("reason",)),
    "restore": ActionSpec(_restore, "operate"),
    "reconcile": ActionSpec(_reconcile, "operate"),
    "set-size-tier": ActionSpec(_size, "operate", ("size_tier",)),
    "pin-release": ActionSpec(_pin, "release", ("release",)),
    "set-cohort": ActionSpec(_cohort, "release", ("cohort",)),
}


def action_spec(name: str) -> ActionSpec:
    try:
        return ACTIONS[name]
    except KeyError:
        raise ValidationFailed(
            {"action": f"action: one of {', '.join(sorted(ACTIONS))} (got {name!r})"}
        ) from None


def act(
    session: Session, tenant: Tenant, name: str, operator: Operator, params: dict[str, Any]
) -> dict[str, Any]:
    """Run one action on one tenant and audit it; a domain error leaves nothing behind."""
    spec = action_spec(name)
    result = spec.run(session, tenant, operator, params)
    details = {key: params[key] for key in spec.audited if key in params}
    if isinstance(result, Operation):
        details["operation_id"] = str(result.id)
    audit.record(
        session,
        actor=operator.actor,
        action=f"tenant.{name}",
        tenant_id=tenant.id,
        target=tenant.slug,
        details=details,
    )
    return {
        "slug": tenant.slug,
        "ok": True,
        "state": str(tenant.state),
        "operation_id": details.get("operation_id"),
        "detail": "",
    }


def bulk(
    session: Session,
    name: str,
    where: TenantFilter,
    operator: Operator,
    params: dict[str, Any],
    *,
    dry_run: bool,
    limit: int = 1000,
) -> dict[str, Any]:
    """The action over every tenant the filter matches; a dry run only says which.

    Each tenant runs in its own savepoint: one tenant's refusal (a 409, say) is reported
    and leaves the others' changes in place.
    """
    spec = action_spec(name)
    matched = list(session.scalars(where.select().order_by(Tenant.slug).limit(limit + 1)))
    if len(matched) > limit:
        raise ValidationFailed(
            {"filter": f"the filter matches more than {limit} tenants; narrow it down"}
        )
    results: list[dict[str, Any]] = []
    if not dry_run:
        for tenant in matched:
            try:
                with session.begin_nested():
                    results.append(act(session, tenant, name, operator, params))
            except DomainError as exc:
                session.refresh(tenant)
                results.append(
                    {
                        "slug": tenant.slug,
                        "ok": False,
                        "state": str(tenant.state),
                        "operation_id": None,
                        "detail": exc.message,
                    }
                )
    audit.record(
        session,
        actor=operator.actor,
        action="fleet.bulk-dry-run" if dry_run else "fleet.bulk",
        target=name,
        details={
            "action": name,
            "filter": where.document(),
            "params": {key: params[key] for key in spec.audited if key in params},
            "matched": len(matched),
            "failed": sum(1 for r in results if not r["ok"]),
        },
    )
    return {
        "action": name,
        "dry_run": dry_run,
        "matched": len(matched),
        "tenants": [t.slug for t in matched],
        "results": results,
    }
