"""Seat usage the runtime reports up: active users per month and provisioned users."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

import structlog
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from tenant_runtime.auth.models import LoginDay, User
from tenant_runtime.uplink.client import Uplink, UplinkError

log = structlog.get_logger(__name__)


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


class UsageReporter:
    """Sends this month's seat usage up every ``usage_report_seconds``.

    The first report waits a random part of the interval, so a fleet restarted at once (a
    rollout) does not report all at once. A report that cannot be sent is simply sent again
    next time: each one carries the whole month's figures, so the newest is all billing needs.
    """

    def __init__(
        self, uplink: Uplink, sessions: Callable[[], Session], interval_seconds: float
    ) -> None:
        self.uplink = uplink
        self.sessions = sessions
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def report_now(self) -> None:
        period = datetime.now(UTC).strftime("%Y-%m")
        with self.sessions() as session:
            active, provisioned = active_users(session, period), provisioned_users(session)
        self.uplink.report_usage(period, active, provisioned)
        log.info("usage.reported", period=period, active_users=active)

    def start(self) -> None:
        if self.uplink.standalone or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="usage-reporter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        # Not for security: only spreads the fleet's reports over the interval.
        self._stop.wait(random.uniform(0, self.interval_seconds))  # noqa: S311
        while not self._stop.is_set():
            try:
                self.report_now()
            except UplinkError as exc:
                log.warning("usage.report_failed", error=str(exc))
            except Exception:
                log.exception("usage.report_failed")
            self._stop.wait(self.interval_seconds)
