"""What each plan grants a portal, read from billing's plan catalog (pure data).

The seat limit, the features and the premium plugins a plan includes are defined once, in
``billing.catalog.PLANS``; the marketplace only reshapes them into the terms the runtime's
entitlement token carries.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.catalog import PLANS, Plan

# Every plan may run plugins; the runtime's plugin host checks this feature.
BASE_FEATURES = ("plugins",)


@dataclass(frozen=True)
class PlanTerms:
    # None: no seat limit.
    seat_limit: int | None
    features: tuple[str, ...]
    # Premium plugins the plan's subscription includes, by plugin key.
    premium_plugins: tuple[str, ...]


def _terms(plan: Plan) -> PlanTerms:
    features = tuple(dict.fromkeys((*plan.features, *BASE_FEATURES)))
    return PlanTerms(plan.max_seats, features, plan.premium_plugins)


PLAN_TERMS: dict[str, PlanTerms] = {key: _terms(plan) for key, plan in PLANS.items()}


def plan_terms(plan: str) -> PlanTerms:
    """An unknown plan gets the Free plan's terms, the least a portal runs on."""
    return PLAN_TERMS.get(plan, PLAN_TERMS["free"])


def plans_including(plugin_key: str) -> list[str]:
    return [key for key, terms in PLAN_TERMS.items() if plugin_key in terms.premium_plugins]


def includes(plan: str, plugin_key: str) -> bool:
    return plugin_key in plan_terms(plan).premium_plugins
