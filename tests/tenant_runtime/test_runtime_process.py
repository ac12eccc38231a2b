"""The runtime as the control plane's `local` driver runs it: real processes, real ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.catalog

# Generous: the suite shares a small machine with other suites, and a cold import of the
# web stack alone can take tens of seconds when the cores are busy.
BOOT_TIMEOUT_SECONDS = 90
TENANT_ID = "7c0d6a8e-5b1f-4e2a-9c3d-1a2b3c4d5e6f"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def runtime_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BACKLOT_")}
    env.update(
        {
            "BACKLOT_RUNTIME_TENANT_ID": TENANT_ID,
            "BACKLOT_RUNTIME_TENANT_SLUG": "globex",
            "BACKLOT_RUNTIME_ORGANIZATION_NAME": "Globex",
            "BACKLOT_RUNTIME_DATABASE_URL": f"sqlite:///{data_dir / 'runtime.db'}",
            "BACKLOT_RUNTIME_DATA_DIR": str(data_dir),
            "BACKLOT_RUNTIME_LOG_FORMAT": "json",
            **overrides,
        }
    )
    return env


def runtime_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tenant_runtime", *args]


def run_runtime(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run a runtime command to completion; the caller asserts on its exit code."""
    return subprocess.run(
        runtime_command(command), env=env, capture_output=True, timeout=60, check=False
    )


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"runtime exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"runtime not healthy after {BOOT_TIMEOUT_SECONDS}s:\n{log.read_text()}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "tenant-data"


@pytest.fixture
def running_runtime(data_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port()
    env = runtime_env(data_dir, BACKLOT_RUNTIME_PORT=str(port))
    migrated = run_runtime("migrate", env)
    assert migrated.returncode == 0, migrated.stderr.decode()
    log = data_dir / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(runtime_command("serve"), env=env, stdout=output, stderr=output)
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}/healthz", log)
        yield process, port, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_serve_announces_itself_refuses_a_twin_and_stops_cleanly(
    running_runtime: tuple[subprocess.Popen[bytes], int, Path], data_dir: Path
) -> None:
    process, port, log = running_runtime
    record = json.loads((data_dir / "runtime.json").read_text())

    assert record["pid"] == process.pid
    assert record["host"] == "127.0.0.1"
    assert record["port"] == port
    assert record["tenant_id"] == TENANT_ID
    assert datetime.fromisoformat(record["started_at"]).tzinfo is not None
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    assert ready.json() == {"status": "ready"}

    twin = run_runtime("serve", runtime_env(data_dir, BACKLOT_RUNTIME_PORT=str(free_port())))
    assert twin.returncode == 3
    assert (
        twin.stderr.decode().strip() == f"another runtime for tenant {TENANT_ID} is already running"
    )

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not (data_dir / "runtime.json").exists()
    log_lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert {line["tenant_id"] for line in log_lines} == {TENANT_ID}
    assert log_lines[-1]["event"] == "runtime stopped"


def test_migrate_failure_is_one_line_on_stderr_without_the_password(data_dir: Path) -> None:
    # Port 1 on loopback refuses at once, so the failure is quick and certain.
    env = runtime_env(
        data_dir,
        BACKLOT_RUNTIME_DATABASE_URL="postgresql+psycopg://tenant:hunter2-secret@127.0.0.1:1/tenant",
    )

    result = run_runtime("migrate", env)

    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert stderr.count("\n") == 1
    assert stderr.startswith(f"Error: migration failed for tenant {TENANT_ID}: OperationalError")
    assert "hunter2-secret" not in stderr + result.stdout.decode()
    assert "postgresql+psycopg://tenant:***@127.0.0.1:1/tenant" in result.stdout.decode()


def test_missing_settings_are_named_on_stderr(data_dir: Path) -> None:
    env = runtime_env(data_dir)
    del env["BACKLOT_RUNTIME_TENANT_ID"]

    result = run_runtime("serve", env)

    assert result.returncode == 1
    assert result.stderr.decode() == (
        "Error: invalid runtime settings: BACKLOT_RUNTIME_TENANT_ID: Field required\n"
    )
