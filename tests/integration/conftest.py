"""A real Celery worker against a real PostgreSQL and Redis, driven through the real web app.

The worker is another process, so the rolled-back-transaction fixtures of the suite do not
apply here: these tests use a committed database of their own, emptied before each test,
and a Redis database of their own (2), flushed before each test. Every test gets a fresh
data directory, so its tenant runtimes, their records and the beat schedule are its own.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis
from litestar.testing import TestClient
from sqlalchemy import Engine, text

from control_plane.app import create_app
from control_plane.core import migrations
from control_plane.core.database import build_engine
from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.local import LocalDriver
from infra.testenv import services
from tests.support.processes import tenant_runtime_pids

ROOT = Path(__file__).resolve().parents[2]
BROKER_DB = 2
SECRET_KEY = "integration-secret-key-of-enough-length-0123"
LOG_TAIL_LINES = 40
TABLES = (
    "outbox_messages",
    "operations",
    "tenant_events",
    "tenants",
    "memberships",
    "users",
    "organizations",
)

T = TypeVar("T")


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:])


@pytest.fixture(scope="session")
def worker_database_url(postgres_admin_url: str) -> Iterator[str]:
    """A migrated, committed control-plane database shared by the worker and the test."""
    name = f"backlot_worker_{_worker_suffix()}"
    url = services.create_database(postgres_admin_url, name)
    migrations.upgrade(url)
    yield url
    services.drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def worker_engine(worker_database_url: str) -> Iterator[Engine]:
    engine = build_engine(worker_database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def broker_url(redis_url: str) -> str:
    return f"{redis_url}/{BROKER_DB}"


class WorkerProcess:
    """``celery worker --beat`` in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.hostname = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.process: subprocess.Popen[bytes] | None = None
        self.meant_to_run = False

    def start(self) -> WorkerProcess:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "control_plane.celery_main",
            "worker",
            "--beat",
            "--loglevel",
            "INFO",
            "--concurrency",
            "1",
            "--hostname",
            self.hostname,
        ]
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.meant_to_run = True
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "the worker was never started"
        return self.process.pid

    def died_unexpectedly(self) -> bool:
        return self.meant_to_run and self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL the whole process group: worker, pool child, beat and any migrate step."""
        self.meant_to_run = False
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, grace_seconds: float = 20.0) -> None:
        """SIGTERM the group and wait for a warm shutdown; SIGKILL whatever is left."""
        self.meant_to_run = False
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace_seconds)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_tail(self) -> str:
        return f"--- worker {self.hostname} log ({self.log_path}) ---\n{_tail(self.log_path)}"


@dataclass
class Backlot:
    """One test's control plane: the web app in-process, workers as processes."""

    settings: Settings
    worker_env: dict[str, str]
    engine: Engine
    client: TestClient[Any]
    log_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    # -- processes -------------------------------------------------------------------

    def start_worker(self) -> WorkerProcess:
        log_path = self.log_dir / f"worker-{len(self.workers) + 1}.log"
        worker = WorkerProcess(self.worker_env, log_path).start()
        self.workers.append(worker)
        return worker

    def diagnostics(self) -> str:
        parts = [worker.log_tail() for worker in self.workers] or ["(no worker was started)"]
        runtimes = self.settings.runtimes_dir
        for runtime_log in sorted(runtimes.glob("*/runtime.log")):
            parts.append(f"--- runtime log {runtime_log} ---\n{_tail(runtime_log, 15)}")
        return "\n".join(parts)

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n{self.diagnostics()}", pytrace=False)

    def wait_for(
        self, probe: Callable[[], T | None], what: str, timeout: float = 60.0, every: float = 0.2
    ) -> T:
        """Poll ``probe`` until it returns something other than None; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value is not None:
                return value
            for worker in self.workers:
                if worker.died_unexpectedly():
                    self.fail(f"worker {worker.hostname} exited while waiting for {what}")
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(every)

    # -- the web app -----------------------------------------------------------------

    def submit_signup(self, slug: str) -> httpx.Response:
        """Fill in and send the real signup form, as a browser would."""
        page = self.client.get("/signup")
        assert page.status_code == 200, f"GET /signup answered {page.status_code}: {page.text}"
        form = {
            "_csrf_token": _hidden_input(page.text, "_csrf_token"),
            "signup_token": _hidden_input(page.text, "signup_token"),
            "organization_name": f"Integration {slug}",
            "slug": slug,
            "email": f"owner.{slug}@example.com",
            "password": "Correct horse battery 42",
            "plan": "free",
        }
        return self.client.post("/signup", data=form, follow_redirects=False)

    def sign_up(self, slug: str) -> dict[str, Any]:
        """Sign up and return the new tenant's status document."""
        response = self.submit_signup(slug)
        # 303 See Other: the browser follows a POST's answer with a GET.
        assert (response.status_code, response.headers.get("location")) == (
            303,
            "/console/progress",
        ), f"signup answered {response.status_code}: {response.text[:2000]}\n{self.diagnostics()}"
        return self.tenant()

    def tenant(self) -> dict[str, Any]:
        response = self.client.get("/api/v1/tenant")
        if response.status_code != 200:
            self.fail(f"GET /api/v1/tenant answered {response.status_code}: {response.text}")
        document: dict[str, Any] = response.json()
        return document

    def wait_until_active(self, timeout: float = 60.0) -> dict[str, Any]:
        def active() -> dict[str, Any] | None:
            tenant = self.tenant()
            if tenant["state"] == "failed":
                self.fail(f"the tenant failed: {tenant['failure_reason']}")
            return tenant if tenant["state"] == "active" else None

        return self.wait_for(active, "the tenant to become active", timeout)

    def events(self) -> list[dict[str, Any]]:
        """The tenant's lifecycle events, oldest first."""
        response = self.client.get("/api/v1/tenant/events")
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()
        return list(reversed(events))

    # -- what is really there --------------------------------------------------------

    def runtime_record(self, tenant_id: str, name: str = "runtime.json") -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(
                (self.settings.runtimes_dir / tenant_id / name).read_text()
            )
        except (OSError, ValueError):
            return None
        return record

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.__exit__(None, None, None)
        for worker in self.workers:
            worker.stop()
        LocalDriver(self.settings).stop_all()


def _hidden_input(page: str, name: str) -> str:
    for tag in re.findall(r"<input\b[^>]*>", page):
        if re.search(rf'\bname="{re.escape(name)}"', tag):
            value = re.search(r'\bvalue="([^"]*)"', tag)
            assert value is not None, f"the {name} input has no value: {tag}"
            return html.unescape(value.group(1))
    raise AssertionError(f"the signup page has no {name} input:\n{page[:3000]}")


@pytest.fixture
def find_runtime_processes() -> Callable[[str], list[int]]:
    return tenant_runtime_pids


@pytest.fixture
def backlot_factory(
    tmp_path: Path, worker_engine: Engine, worker_database_url: str, broker_url: str
) -> Iterator[Callable[..., Backlot]]:
    """Build this test's control plane; everything it started is stopped afterwards.

    Empties the database and the broker first, so each test sees only its own work.
    """
    with worker_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    redis.Redis.from_url(broker_url).flushdb()

    made: list[Backlot] = []

    def make(*, runtime_startup_delay_seconds: float = 0.0, app_broker_url: str = "") -> Backlot:
        data_dir = tmp_path / f"backlot-{len(made) + 1}"
        values: dict[str, Any] = {
            "env": "test",
            "database_url": worker_database_url,
            "broker_url": broker_url,
            "data_dir": str(data_dir),
            "secret_key": SECRET_KEY,
            "reconcile_lease_seconds": 4,
            "resync_interval_seconds": 2,
            "outbox_relay_interval_seconds": 1,
            "runtime_start_timeout_seconds": 30,
            "runtime_startup_delay_seconds": runtime_startup_delay_seconds,
        }
        worker_env = {k: v for k, v in os.environ.items() if not k.startswith("BACKLOT_")}
        worker_env.update({f"BACKLOT_{k.upper()}": str(v) for k, v in values.items()})
        worker_env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        settings = Settings(**values)
        app_settings = settings.model_copy(update={"broker_url": app_broker_url or broker_url})
        client: TestClient[Any] = TestClient(create_app(app_settings))
        client.__enter__()
        log_dir = tmp_path / "logs"
        log_dir.mkdir(exist_ok=True)
        backlot = Backlot(settings, worker_env, worker_engine, client, log_dir)
        made.append(backlot)
        return backlot

    yield make
    for backlot in made:
        backlot.close()
