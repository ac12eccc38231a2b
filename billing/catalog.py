"""The plan catalog, as code: what each plan costs, includes and unlocks.

Stripe holds one Product per paid plan and one per-seat recurring price per plan version.
Prices are created through the Plans API with an id we choose: the id is the stable lookup
key (``sync`` finds it again by id, so running it twice changes nothing), Stripe answers the
Prices API and Checkout for it like any price, and an amount change means a new version id
because Stripe prices are immutable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plan:
    key: str
    name: str
    # Monthly price per seat, in cents (USD).
    seat_price_cents: int
    # Seats the plan always bills for: the minimum quantity.
    included_seats: int
    # Seat cap for plans without a subscription (free).
    max_seats: int | None
    size_tier: str
    features: tuple[str, ...]
    premium_plugins: tuple[str, ...]
    version: int = 1

    @property
    def paid(self) -> bool:
        return self.seat_price_cents > 0

    @property
    def product_id(self) -> str:
        return f"backlot_{self.key}"

    @property
    def price_id(self) -> str:
        """The per-seat price's id, which is also its lookup key."""
        return f"backlot_{self.key}_seat_monthly_v{self.version}"

    def billed_seats(self, active_users: int) -> int:
        return max(self.included_seats, active_users)


PLANS: dict[str, Plan] = {
    plan.key: plan
    for plan in (
        Plan(
            key="free",
            name="Free",
            seat_price_cents=0,
            included_seats=5,
            max_seats=5,
            size_tier="small",
            features=("catalog", "search", "docs"),
            premium_plugins=(),
        ),
        Plan(
            key="team",
            name="Team",
            seat_price_cents=1500,
            included_seats=5,
            max_seats=None,
            size_tier="medium",
            features=("catalog", "search", "docs", "sso", "scim"),
            premium_plugins=("techdocs-pro",),
        ),
        Plan(
            key="enterprise",
            name="Enterprise",
            seat_price_cents=3900,
            included_seats=25,
            max_seats=None,
            size_tier="large",
            features=("catalog", "search", "docs", "sso", "scim", "audit-export", "assistant"),
            premium_plugins=("techdocs-pro", "scorecards", "cost-insights", "assistant"),
        ),
    )
}


def plan(key: str) -> Plan:
    return PLANS[key]


def plan_for_price(price_id: str) -> Plan | None:
    """The plan a Stripe price belongs to, any version of it."""
    for candidate in PLANS.values():
        if candidate.paid and price_id.startswith(f"backlot_{candidate.key}_seat_monthly_v"):
            return candidate
    return None
