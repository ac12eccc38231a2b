"""The provisioning steps a person sees on the signup progress page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant

StepStatus = Literal["done", "active", "waiting", "failed"]


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    label: str
    status: StepStatus
    detail: str = ""


def _condition_true(tenant: Tenant, kind: str) -> bool:
    condition = tenant.condition(kind)
    return condition is not None and condition["status"] == "True"


def _detail(tenant: Tenant, kind: str) -> str:
    condition = tenant.condition(kind)
    return str(condition["message"]) if condition else ""


def provisioning_steps(tenant: Tenant) -> list[Step]:
    queued = tenant.state != TenantState.PENDING
    reached = [
        ("created", "Organization and owner account created", True, ""),
        *(
            [
                (
                    "payment",
                    "Payment confirmed by Stripe",
                    _condition_true(tenant, "PaymentConfirmed"),
                    _detail(tenant, "PaymentConfirmed"),
                )
            ]
            # Only paid plans wait for a payment (billing sets this condition at signup).
            if tenant.condition("PaymentConfirmed") is not None
            else []
        ),
        (
            "queued",
            "Provisioning picked up by a worker",
            queued,
            "" if queued else "waiting for a worker",
        ),
        (
            "database",
            "Portal database ready",
            _condition_true(tenant, "DatabaseReady"),
            _detail(tenant, "DatabaseReady"),
        ),
        (
            "workload",
            "Portal started and healthy",
            _condition_true(tenant, "WorkloadReady"),
            _detail(tenant, "WorkloadReady"),
        ),
        (
            "ready",
            "Portal live",
            _condition_true(tenant, "Ready") and tenant.state == TenantState.ACTIVE,
            tenant.runtime_url or "",
        ),
    ]
    steps: list[Step] = []
    current_found = False
    for key, label, done, detail in reached:
        if done:
            steps.append(Step(key, label, "done", detail))
        elif not current_found:
            current_found = True
            if tenant.state == TenantState.FAILED:
                steps.append(Step(key, label, "failed", tenant.failure_reason or detail))
            else:
                steps.append(Step(key, label, "active", detail))
        else:
            steps.append(Step(key, label, "waiting", ""))
    return steps


def is_settled(tenant: Tenant) -> bool:
    """Nothing more will change without someone acting: the page can stop polling."""
    return tenant.state in (
        TenantState.ACTIVE,
        TenantState.FAILED,
        TenantState.SUSPENDED,
        TenantState.DELETED,
    ) and (tenant.observed_generation >= tenant.generation or tenant.state == TenantState.FAILED)
