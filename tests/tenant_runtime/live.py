"""A live tenant runtime process (migrate, then serve) for the conformance, browser and
benchmark tests, and a real HTTP server that serves catalog files to its `url:` locations."""

from __future__ import annotations

import functools
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

BOOT_TIMEOUT_SECONDS = 60
SERVICE_TOKEN = "conformance-member-token-6b1f0c2a"
ADMIN_TOKEN = "conformance-admin-token-9d4e6f8a"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class LiveRuntime:
    base_url: str
    pid: int
    log: Path

    @property
    def catalog_url(self) -> str:
        return f"{self.base_url}/api/catalog"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def file_server(root: Path) -> Iterator[str]:
    """Python's own HTTP file server over `root` on a free loopback port; yields its URL."""
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def live_runtime(
    data_dir: Path,
    database_url: str,
    *,
    allow_hosts: list[str],
    file_roots: list[Path],
    tenant_id: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[LiveRuntime]:
    """`python -m tenant_runtime migrate` then `serve`, as the local driver runs them."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("BACKLOT_")}
    env.update(
        {
            "BACKLOT_RUNTIME_TENANT_ID": tenant_id,
            "BACKLOT_RUNTIME_TENANT_SLUG": "conformance",
            "BACKLOT_RUNTIME_ORGANIZATION_NAME": "Conformance Corp",
            "BACKLOT_RUNTIME_DATABASE_URL": database_url,
            "BACKLOT_RUNTIME_DATA_DIR": str(data_dir),
            "BACKLOT_RUNTIME_PORT": str(port),
            "BACKLOT_RUNTIME_LOG_FORMAT": "json",
            "BACKLOT_RUNTIME_LOG_LEVEL": "WARNING",
            "BACKLOT_RUNTIME_SERVICE_TOKENS": json.dumps(
                [
                    {"token": SERVICE_TOKEN, "subject": "conformance"},
                    {"token": ADMIN_TOKEN, "subject": "conformance-admin", "role": "admin"},
                ]
            ),
            "BACKLOT_RUNTIME_CATALOG_URL_ALLOW_HOSTS": json.dumps(allow_hosts),
            "BACKLOT_RUNTIME_CATALOG_FILE_ROOTS": json.dumps([str(p) for p in file_roots]),
            "BACKLOT_RUNTIME_CATALOG_REFRESH_INTERVAL_SECONDS": "0",
            **(extra_env or {}),
        }
    )
    log = data_dir / "runtime.log"
    command = [sys.executable, "-m", "tenant_runtime"]
    migrated = subprocess.run(
        [*command, "migrate"], env=env, capture_output=True, timeout=300, check=False
    )
    if migrated.returncode != 0:
        pytest.fail(f"runtime migrate failed:\n{migrated.stderr.decode()}", pytrace=False)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    runtime = LiveRuntime(f"http://127.0.0.1:{port}", process.pid, log)
    try:
        _wait_until_healthy(process, runtime)
        yield runtime
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(process: subprocess.Popen[bytes], runtime: LiveRuntime) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"runtime exited with {process.returncode}:\n{runtime.log_tail()}", pytrace=False
            )
        try:
            if httpx.get(f"{runtime.base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"runtime not ready after {BOOT_TIMEOUT_SECONDS}s:\n{runtime.log_tail()}")
