"""The periodic refresh: every registered location is read again on an interval."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tenant_runtime.catalog.locations import LocationService
from tenant_runtime.core.settings import RuntimeSettings

logger = structlog.get_logger(__name__)

# How long the loop sleeps when nothing is due; a due location is picked up within this.
IDLE_SECONDS = 5.0
REFRESH_ACTOR = "backlot:periodic-refresh"


class LocationRefresher:
    """A daemon thread refreshing due locations, one claimed location at a time.

    Claims are compare-and-set on `next_refresh_at`, so two runtime replicas never read
    the same location at once.
    """

    def __init__(self, settings: RuntimeSettings, session_factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.settings.catalog_refresh_interval_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="catalog-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def refresh_due(self) -> int:
        """Refresh every location that is due now; returns how many were refreshed."""
        refreshed = 0
        # Only what is due now: a claimed location is next due after this round started.
        started = datetime.now(UTC)
        while not self._stop.is_set():
            with self.session_factory() as session:
                service = LocationService(session, self.settings)
                location = service.claim_due(started)
                if location is None:
                    session.rollback()
                    return refreshed
                session.commit()
                try:
                    service.refresh(location, actor=REFRESH_ACTOR)
                    session.commit()
                except SQLAlchemyError:
                    session.rollback()
                    logger.exception("location refresh failed", location_id=location.id)
            refreshed += 1
        return refreshed

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh_due()
            except SQLAlchemyError:
                # The database may be briefly unavailable; the next round tries again.
                logger.warning("periodic refresh could not reach the database")
            self._stop.wait(min(IDLE_SECONDS, self.settings.catalog_refresh_interval_seconds))
