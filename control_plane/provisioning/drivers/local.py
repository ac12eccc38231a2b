"""The ``local`` driver: each tenant runtime is a process on this machine.

It mirrors the Kubernetes driver's shape: a migration step (like a migration Job)
before the workload, and readiness from the runtime's own health endpoint. The runtime
holds an exclusive lock on its data directory, so a tenant can never have two runtimes,
whatever a killed or duplicated worker does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import structlog

from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.base import (
    ConditionUpdate,
    DriverError,
    Progress,
    RuntimeObservation,
    RuntimeSpec,
)
from control_plane.runtime_link.service import runtime_token

log = structlog.get_logger(__name__)

ANOTHER_RUNTIME_EXIT_CODE = 3
_MIGRATE_TIMEOUT_SECONDS = 120


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is not serving anyone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


class LocalDriver:
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # -- paths -------------------------------------------------------------------------

    def tenant_dir(self, spec: RuntimeSpec) -> Path:
        return self.settings.runtimes_dir / spec.tenant_id

    def _env(self, spec: RuntimeSpec, port: int | None = None) -> dict[str, str]:
        directory = self.tenant_dir(spec)
        env = dict(os.environ)
        env.update(
            {
                "BACKLOT_RUNTIME_TENANT_ID": spec.tenant_id,
                "BACKLOT_RUNTIME_TENANT_SLUG": spec.slug,
                "BACKLOT_RUNTIME_ORGANIZATION_NAME": spec.organization_name,
                "BACKLOT_RUNTIME_DATABASE_URL": f"sqlite:///{directory / 'runtime.db'}",
                "BACKLOT_RUNTIME_DATA_DIR": str(directory),
                "BACKLOT_RUNTIME_LOG_FORMAT": self.settings.log_format,
                "BACKLOT_RUNTIME_STARTUP_DELAY_SECONDS": str(
                    self.settings.runtime_startup_delay_seconds
                ),
                "BACKLOT_RUNTIME_CONTROL_PLANE_URL": (
                    self.settings.resolved_runtime_control_plane_url
                ),
                "BACKLOT_RUNTIME_CONTROL_PLANE_TOKEN": runtime_token(self.settings, spec.tenant_id),
            }
        )
        if port is not None:
            env["BACKLOT_RUNTIME_HOST"] = "127.0.0.1"
            env["BACKLOT_RUNTIME_PORT"] = str(port)
        return env

    def _command(self, verb: str) -> list[str]:
        return [self.settings.local_runtime_python, "-m", "tenant_runtime", verb]

    # -- what is running ---------------------------------------------------------------

    def _lock_held(self, spec: RuntimeSpec) -> bool:
        lock_path = self.tenant_dir(spec) / "runtime.lock"
        if not lock_path.exists():
            return False
        with lock_path.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def _runtime_record(self, spec: RuntimeSpec) -> dict[str, Any] | None:
        path = self.tenant_dir(spec) / "runtime.json"
        try:
            record: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return record

    def _launch_record(self, spec: RuntimeSpec) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads((self.tenant_dir(spec) / "launch.json").read_text())
        except (OSError, ValueError):
            return None
        return record

    def _healthy(self, url: str) -> bool:
        try:
            response = httpx.get(f"{url}/healthz", timeout=1.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def observe(self, spec: RuntimeSpec) -> RuntimeObservation:
        directory = self.tenant_dir(spec)
        observation = RuntimeObservation(database_ready=(directory / "runtime.db").exists())
        record = self._runtime_record(spec)
        if record is None or not self._lock_held(spec) or not _pid_alive(int(record["pid"])):
            observation.message = "no runtime process is serving"
            return observation
        url = f"http://{record['host']}:{record['port']}"
        observation.url = url
        observation.names = {
            "data_dir": str(directory),
            "pid": record["pid"],
            "port": record["port"],
        }
        observation.workload_ready = self._healthy(url)
        observation.message = "healthy" if observation.workload_ready else "not answering /healthz"
        return observation

    # -- verbs -------------------------------------------------------------------------

    def ensure(self, spec: RuntimeSpec, progress: Progress) -> RuntimeObservation:
        directory = self.tenant_dir(spec)
        directory.mkdir(parents=True, exist_ok=True)
        self._migrate(spec)
        progress(
            ConditionUpdate("DatabaseReady", True, "Migrated", "the portal's database is ready")
        )

        observation = self.observe(spec)
        if observation.workload_ready:
            progress(ConditionUpdate("WorkloadReady", True, "Healthy", "the portal is answering"))
            return observation

        if not self._lock_held(spec):
            # Back from suspension: the portal takes its address over from the stand-in.
            stand_in = self._stop_suspended_page(spec)
            self._start(spec, progress, port=stand_in)
        else:
            progress(
                ConditionUpdate(
                    "WorkloadReady", False, "Starting", "waiting for the running portal to answer"
                )
            )
        observation = self._wait_healthy(spec)
        progress(ConditionUpdate("WorkloadReady", True, "Healthy", "the portal is answering"))
        return observation

    def resume(self, spec: RuntimeSpec, progress: Progress) -> RuntimeObservation:
        return self.ensure(spec, progress)

    def suspend(self, spec: RuntimeSpec) -> None:
        """Stop the portal and answer on its port with the suspended page; data is kept."""
        port = self._stop_runtime(spec)
        if port is not None and self._suspended_record(spec) is None:
            self._serve_suspended_page(spec, port)

    def destroy(self, spec: RuntimeSpec) -> None:
        self._stop_runtime(spec)
        self._stop_suspended_page(spec)

    def purge(self, spec: RuntimeSpec) -> None:
        self.destroy(spec)
        shutil.rmtree(self.tenant_dir(spec), ignore_errors=True)

    def stop_all(self) -> int:
        """Stop every runtime this machine runs (``make run`` does this on Ctrl-C)."""
        stopped = 0
        for directory in self.settings.runtimes_dir.iterdir():
            spec = RuntimeSpec(directory.name, "", "", "", "")
            if (
                self._runtime_record(spec)
                or self._launch_record(spec)
                or self._suspended_record(spec)
            ):
                self.destroy(spec)
                stopped += 1
        return stopped

    def _stop_runtime(self, spec: RuntimeSpec) -> int | None:
        """Stop the portal's process; the port it served on, if it had one."""
        records = [r for r in (self._runtime_record(spec), self._launch_record(spec)) if r]
        for pid in {int(r["pid"]) for r in records}:
            self._terminate(pid)
        for name in ("runtime.json", "launch.json"):
            (self.tenant_dir(spec) / name).unlink(missing_ok=True)
        return next((int(r["port"]) for r in records if r.get("port")), None)

    # -- the suspended page ------------------------------------------------------------

    def _suspended_record(self, spec: RuntimeSpec) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(
                (self.tenant_dir(spec) / "suspended.json").read_text()
            )
        except (OSError, ValueError):
            return None
        return record if _pid_alive(int(record["pid"])) else None

    def _serve_suspended_page(self, spec: RuntimeSpec, port: int) -> None:
        page = f"{self.settings.resolved_runtime_control_plane_url}/suspended/{spec.slug}"
        directory = self.tenant_dir(spec)
        with (directory / "runtime.log").open("ab") as log_file:
            process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    self.settings.local_runtime_python,
                    # By path, not with -m: the script needs only the standard library, and
                    # importing the control_plane package would triple its start time.
                    str(Path(__file__).with_name("suspended_page.py")),
                    "--port",
                    str(port),
                    "--page",
                    page,
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        tmp = directory / "suspended.json.tmp"
        tmp.write_text(json.dumps({"pid": process.pid, "port": port}))
        tmp.replace(directory / "suspended.json")
        self._wait_listening(port, process)
        log.info("runtime.suspended_page_started", pid=process.pid, port=port)

    def _wait_listening(self, port: int, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DriverError(
                    "SuspendedPageFailed",
                    f"the suspended page could not serve port {port}: exit {process.returncode}",
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return
            time.sleep(0.05)
        raise DriverError("SuspendedPageFailed", f"the suspended page did not open port {port}")

    def _stop_suspended_page(self, spec: RuntimeSpec) -> int | None:
        """Stop the stand-in, if one runs; the port it held."""
        record = self._suspended_record(spec)
        (self.tenant_dir(spec) / "suspended.json").unlink(missing_ok=True)
        if record is None:
            return None
        self._terminate(int(record["pid"]))
        return int(record["port"])

    # -- steps -------------------------------------------------------------------------

    def _migrate(self, spec: RuntimeSpec) -> None:
        try:
            result = subprocess.run(  # noqa: S603 - fixed argv, no shell
                self._command("migrate"),
                env=self._env(spec),
                capture_output=True,
                text=True,
                timeout=_MIGRATE_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DriverError(
                "DatabaseMigrationTimedOut", f"migrations took over {exc.timeout:.0f}s"
            ) from exc
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise DriverError(
                "DatabaseMigrationFailed", " / ".join(tail) or f"exit code {result.returncode}"
            )

    def _start(self, spec: RuntimeSpec, progress: Progress, port: int | None = None) -> None:
        directory = self.tenant_dir(spec)
        port = port or _free_port()
        with (directory / "runtime.log").open("ab") as log_file:
            process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                self._command("serve"),
                env=self._env(spec, port),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: the runtime outlives a worker that dies, and the next
                # reconcile adopts it instead of starting a second one.
                start_new_session=True,
            )
        launch = {"pid": process.pid, "port": port, "started_at": time.time()}
        tmp = directory / "launch.json.tmp"
        tmp.write_text(json.dumps(launch))
        tmp.replace(directory / "launch.json")
        log.info("runtime.started", pid=process.pid, port=port)
        progress(
            ConditionUpdate(
                "WorkloadReady", False, "Starting", f"portal process {process.pid} is starting"
            )
        )

    def _wait_healthy(self, spec: RuntimeSpec) -> RuntimeObservation:
        deadline = time.monotonic() + self.settings.runtime_start_timeout_seconds
        launch = self._launch_record(spec)
        while time.monotonic() < deadline:
            observation = self.observe(spec)
            if observation.workload_ready:
                return observation
            if launch and not _pid_alive(int(launch["pid"])) and not self._lock_held(spec):
                raise DriverError(
                    "RuntimeCrashed", f"the portal process exited: {self._log_tail(spec)}"
                )
            time.sleep(0.2)
        self.suspend(spec)
        raise DriverError(
            "RuntimeUnhealthy",
            f"the portal did not answer its health check within "
            f"{self.settings.runtime_start_timeout_seconds:.0f}s: {self._log_tail(spec)}",
        )

    def _log_tail(self, spec: RuntimeSpec, lines: int = 3) -> str:
        try:
            text = (self.tenant_dir(spec) / "runtime.log").read_text(errors="replace")
        except OSError:
            return "no log"
        tail = [line for line in text.strip().splitlines() if line.strip()][-lines:]
        return " / ".join(tail) or "no output"

    def _terminate(self, pid: int, grace_seconds: float = 10.0) -> None:
        if not _pid_alive(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _pid_alive(pid):
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
