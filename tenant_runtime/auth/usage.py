"""Seat usage the runtime reports up: active users per month and provisioned users."""

from __future__ import annotations

from datetime import date

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from tenant_runtime.auth.models import LoginDay, User


def _month_bounds(period: str) -> tuple[date, date]:
    """[first day, first day of the next month) of a `YYYY-MM` period; ValueError otherwise."""
    year_text, _, month_text = period.partition("-")
    if len(year_text) != 4 or len(month_text) != 2:
        raise ValueError(f"period must look like YYYY-MM, got {period!r}")
    start = date(int(year_text), int(month_text), 1)
    end = date(start.year + 1, 1, 1) if start.month == 12 else date(start.year, start.month + 1, 1)
    return start, end


def active_users(session: Session, period: str) -> int:
    """Distinct users who signed in or used a session during the month."""
    start, end = _month_bounds(period)
    count = session.scalar(
        select(func.count(distinct(LoginDay.user_id))).where(
            LoginDay.day >= start, LoginDay.day < end
        )
    )
    return int(count or 0)


def provisioned_users(session: Session) -> int:
    """Users who may sign in now (deactivated users do not hold a seat)."""
    return int(session.scalar(select(func.count()).select_from(User).where(User.active)) or 0)
