"""`serve`: run one tenant's portal, at most one process per tenant data directory."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO

import structlog
import uvicorn

from tenant_runtime.app import create_app
from tenant_runtime.core.settings import RuntimeSettings

logger = structlog.get_logger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RuntimeAlreadyRunning(RuntimeError):
    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"another runtime for tenant {tenant_id} is already running")


@contextmanager
def runtime_lock(settings: RuntimeSettings) -> Iterator[None]:
    """Hold `<DATA_DIR>/runtime.lock` exclusively for as long as the runtime runs.

    The kernel drops a flock when its process dies, however it dies, so a crashed
    runtime never leaves a stale lock behind for the control plane to clean up.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock_file: IO[str] = settings.lock_path.open("a")
    try:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise RuntimeAlreadyRunning(settings.tenant_id) from error
        yield
    finally:
        lock_file.close()


def write_runtime_record(settings: RuntimeSettings, port: int) -> None:
    """Announce where this runtime listens; atomic so readers never see half a file."""
    record = {
        "pid": os.getpid(),
        "host": settings.host,
        "port": port,
        "tenant_id": settings.tenant_id,
        "started_at": datetime.now(UTC).isoformat(),
    }
    partial = settings.record_path.with_name(f".{settings.record_path.name}.{os.getpid()}")
    partial.write_text(json.dumps(record), encoding="utf-8")
    os.replace(partial, settings.record_path)


def remove_runtime_record(record_path: Path) -> None:
    record_path.unlink(missing_ok=True)


class RuntimeServer(uvicorn.Server):
    """Uvicorn, writing the runtime record only once the socket accepts connections."""

    def __init__(self, config: uvicorn.Config, settings: RuntimeSettings) -> None:
        super().__init__(config)
        self.settings = settings
        self.record_written = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        # With PORT=0 the kernel picks the port; record the one actually bound.
        port = self.config.port
        for server in self.servers:
            for bound in server.sockets:
                port = bound.getsockname()[1]
        await asyncio.to_thread(write_runtime_record, self.settings, port)
        self.record_written = True
        logger.info("runtime started", host=self.settings.host, port=port)


@contextmanager
def stop_signals_handled() -> Iterator[None]:
    """Make SIGTERM and SIGINT a clean stop.

    Uvicorn shuts down gracefully on these signals, then re-raises the signal to the
    handler that was installed before it ran; with the default handlers the process
    would die there, before it removes its runtime record and exits 0.
    """
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    for number in STOP_SIGNALS:
        signal.signal(number, _note_stop_signal)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _note_stop_signal(number: int, _: FrameType | None) -> None:
    logger.info("stop signal received", signal=signal.Signals(number).name)


def serve(settings: RuntimeSettings) -> int:
    """Serve until SIGTERM or SIGINT; returns the process exit code."""
    with runtime_lock(settings):
        if settings.startup_delay_seconds:
            logger.info("delaying startup", seconds=settings.startup_delay_seconds)
            time.sleep(settings.startup_delay_seconds)
        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            # Logging is already configured with the tenant id; requests are logged by the app.
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
        )
        server = RuntimeServer(config, settings)
        try:
            with stop_signals_handled():
                server.run()
        finally:
            if server.record_written:
                remove_runtime_record(settings.record_path)
        if not server.started:
            logger.error("runtime failed to start")
            return 1
        logger.info("runtime stopped")
        return 0
