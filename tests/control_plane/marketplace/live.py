"""A real control plane (served on loopback) and a real runtime process linked by the uplink.

Used by the marketplace tests, the browser test and the activation benchmark.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.runtime_link import service as runtime_link
from control_plane.tenants.models import Tenant
from tests.support.processes import CATALOG_READER_TOKEN, CATALOG_READER_TOKENS
from tests.support.servers import free_port, serving

BOOT_TIMEOUT_SECONDS = 90


@contextmanager
def serve_control_plane(
    settings: Settings, sessions: sessionmaker[Session]
) -> Iterator[tuple[str, Settings]]:
    """The control plane on a free port, its public URL set to that address."""
    port = free_port()
    settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}", "port": port})
    app = create_app(settings, sessions=sessions)
    with serving(app, port, what="the control plane", timeout_seconds=10) as url:
        yield url, settings


MEMBER_HEADERS = {"authorization": f"Bearer {CATALOG_READER_TOKEN}"}


@dataclass
class RuntimeProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def get(self, path: str) -> httpx.Response:
        """GET as a member of the portal (a service token)."""
        return httpx.get(self.url + path, headers=MEMBER_HEADERS, timeout=5)

    def logs(self) -> str:
        """The runtime's log without the per-request lines."""
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines if '"request handled"' not in line)


def runtime_env(
    data_dir: Path,
    tenant: Tenant,
    settings: Settings,
    control_plane_url: str,
    port: int,
    **overrides: str,
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BACKLOT_")}
    env.update(
        {
            "BACKLOT_RUNTIME_TENANT_ID": str(tenant.id),
            "BACKLOT_RUNTIME_TENANT_SLUG": tenant.slug,
            "BACKLOT_RUNTIME_ORGANIZATION_NAME": "Initech",
            "BACKLOT_RUNTIME_DATABASE_URL": f"sqlite:///{data_dir / 'runtime.db'}",
            "BACKLOT_RUNTIME_DATA_DIR": str(data_dir),
            "BACKLOT_RUNTIME_PORT": str(port),
            "BACKLOT_RUNTIME_LOG_FORMAT": "json",
            "BACKLOT_RUNTIME_CONTROL_PLANE_URL": control_plane_url,
            "BACKLOT_RUNTIME_CONTROL_PLANE_TOKEN": runtime_link.runtime_token(settings, tenant.id),
            "BACKLOT_RUNTIME_CONFIG_REFRESH_SECONDS": "0.25",
            "BACKLOT_RUNTIME_PLUGIN_TICK_SECONDS": "0.25",
            "BACKLOT_RUNTIME_SERVICE_TOKENS": CATALOG_READER_TOKENS,
            **overrides,
        }
    )
    return env


@contextmanager
def run_runtime(
    data_dir: Path, tenant: Tenant, settings: Settings, control_plane_url: str, **overrides: str
) -> Iterator[RuntimeProcess]:
    """Migrate and serve the tenant's runtime as the local driver does: its own process."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = runtime_env(data_dir, tenant, settings, control_plane_url, port, **overrides)
    command = [sys.executable, "-m", "tenant_runtime"]
    migrated = subprocess.run(
        [*command, "migrate"], env=env, capture_output=True, timeout=60, check=False
    )
    assert migrated.returncode == 0, migrated.stderr.decode()
    log = data_dir / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen([*command, "serve"], env=env, stdout=output, stderr=output)
    runtime = RuntimeProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_for(lambda: _healthy(runtime), BOOT_TIMEOUT_SECONDS, runtime, "runtime healthy")
        yield runtime
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _healthy(runtime: RuntimeProcess) -> bool:
    if runtime.process.poll() is not None:
        pytest.fail(f"runtime exited with {runtime.process.returncode}:\n{runtime.logs()}")
    try:
        return runtime.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def wait_for(
    condition: Callable[[], bool], timeout: float, runtime: RuntimeProcess, what: str
) -> float:
    """Poll ``condition`` until true; returns the seconds it took, fails with the runtime's log."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    pytest.fail(f"{what}: not within {timeout}s\n{runtime.logs()[:6000]}")
