"""Serving an ASGI app on loopback for a test, and finding free ports."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(app: Any, port: int, *, what: str, timeout_seconds: float = 20) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on ``port``; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_seconds
    while not server.started:
        assert thread.is_alive(), f"{what} stopped before it started serving"
        assert time.monotonic() < deadline, f"{what} did not start within {timeout_seconds:.0f} s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
