"""Entry point for ``celery -A control_plane.celery_main worker|beat``: the only module that
builds the Celery app from the environment at import time, as Celery's CLI expects."""

from __future__ import annotations

from control_plane.core.logging import configure_logging
from control_plane.core.settings import load_settings
from control_plane.worker import build_celery

_settings = load_settings()
configure_logging(_settings.log_format, _settings.log_level)
app = build_celery(_settings)
