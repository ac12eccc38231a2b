"""Start the whole product the way a user does with ``make run``, and stop it with Ctrl-C.

Shared by the end-to-end tests and the benchmarks: ``python -m control_plane run`` on the
embedded default (SQLite files and an embedded broker under a fresh data directory, a
Celery worker with beat, tenant runtimes as local processes).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
LOG_TAIL_LINES = 40

_HIDDEN_INPUT = r'<input[^>]*name="{name}"[^>]*value="([^"]*)"'


@dataclass(frozen=True)
class Product:
    """One running product: where it answers and where it keeps its data."""

    base_url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    seconds_to_ready: float

    @property
    def database_path(self) -> Path:
        return self.data_dir / "control-plane.db"

    def organization_count(self, slug: str) -> int:
        """How many organizations hold this slug, read straight from the SQLite file."""
        with contextlib.closing(sqlite3.connect(self.database_path, timeout=10)) as connection:
            (count,) = connection.execute(
                "SELECT count(*) FROM organizations WHERE slug = ?", (slug,)
            ).fetchone()
        return int(count)

    def user_count(self, email: str) -> int:
        with contextlib.closing(sqlite3.connect(self.database_path, timeout=10)) as connection:
            (count,) = connection.execute(
                "SELECT count(*) FROM users WHERE email = ?", (email,)
            ).fetchone()
        return int(count)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)


def hidden_input(html: str, name: str) -> str:
    """The value of a hidden ``<input name=...>`` in a page; fails the test when absent."""
    match = re.search(_HIDDEN_INPUT.format(name=re.escape(name)), html)
    assert match is not None, f"no hidden input {name!r} in the page"
    return match.group(1)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def processes_using(data_dir: Path) -> list[str]:
    """Every live process whose environment points into ``data_dir``, as "pid: cmdline".

    The product's own processes carry ``BACKLOT_DATA_DIR=<data_dir>``; tenant runtimes
    also carry ``BACKLOT_RUNTIME_DATA_DIR=<data_dir>/runtimes/<tenant>``. Zombies have an
    empty cmdline and are not counted: they serve nothing.
    """
    prefix = str(data_dir)
    found: list[str] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if not cmdline:
            continue
        variables = dict(item.decode(errors="replace").partition("=")[::2] for item in environ)
        if any(
            variables.get(name, "") == prefix or variables.get(name, "").startswith(prefix + "/")
            for name in ("BACKLOT_DATA_DIR", "BACKLOT_RUNTIME_DATA_DIR")
        ):
            found.append(f"{entry.name}: {cmdline}")
    return found


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"`python -m control_plane run` exited with {process.returncode} before it was "
                f"ready; log tail:\n{log_tail(log_path)}",
                pytrace=False,
            )
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=2.0)
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        time.sleep(0.1)
    pytest.fail(
        f"the product did not answer GET /readyz with 200 within {READY_TIMEOUT_SECONDS:.0f}s "
        f"(last: {last}); log tail:\n{log_tail(log_path)}",
        pytrace=False,
    )


def _ctrl_c(process: subprocess.Popen[bytes]) -> int:
    """What a terminal does on Ctrl-C: SIGINT to the foreground process group.

    The product runs in its own session (``start_new_session``), so its group holds the
    CLI, the web server, the worker and whatever they run in the foreground; tenant
    runtimes sit in sessions of their own and are the CLI's to stop.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return -1


@contextlib.contextmanager
def running_product(data_dir: Path, **extra_env: str) -> Iterator[Product]:
    """Run the product on the embedded default until the block ends, then Ctrl-C it.

    On the way out it asserts that the CLI exited with 0 and that no process it started
    (web, worker, any tenant runtime) is left behind.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}-product.log"
    env = {
        **os.environ,
        "BACKLOT_DATA_DIR": str(data_dir),
        "BACKLOT_PORT": str(port),
        "BACKLOT_HOST": "127.0.0.1",
        "BACKLOT_RESYNC_INTERVAL_SECONDS": "5",
        **extra_env,
    }
    # Settings the developer's shell may carry must not point the product elsewhere.
    for name in ("BACKLOT_DATABASE_URL", "BACKLOT_BROKER_URL", "BACKLOT_PUBLIC_URL"):
        env.pop(name, None)
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log_file:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "control_plane", "run"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_ready(base_url, process, log_path)
            product = Product(
                base_url=base_url,
                data_dir=data_dir,
                log_path=log_path,
                process=process,
                seconds_to_ready=time.monotonic() - started,
            )
            yield product
        finally:
            exit_code = _ctrl_c(process)

    leftovers = processes_using(data_dir)
    for leftover in leftovers:  # do not leak them into the next test run
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(leftover.split(":", 1)[0]), signal.SIGKILL)
    assert exit_code == 0, (
        f"Ctrl-C should stop the product with exit code 0, got {exit_code}; log tail:\n"
        f"{log_tail(log_path)}"
    )
    assert leftovers == [], (
        "Ctrl-C should stop every process the product started; still running:\n"
        + "\n".join(leftovers)
        + f"\nlog tail:\n{log_tail(log_path)}"
    )


def sign_in_to_the_portal(page: Page, portal_url: str) -> None:
    """Open the portal from the console, as an admin does: the handoff gives a session."""
    page.goto("/console/portal")
    page.wait_for_url(f"{portal_url}/**")


def wait_for_portal_status(page: Page, url: str, status: int, timeout_seconds: float) -> None:
    """Poll ``url`` with the browser's own cookies (its portal session) until it answers."""
    deadline = time.monotonic() + timeout_seconds
    last: int | str | None = None
    while time.monotonic() < deadline:
        try:
            last = page.request.get(url, max_redirects=0).status
        except PlaywrightError as exc:
            last = str(exc).splitlines()[0]
        if last == status:
            return
        time.sleep(0.2)
    pytest.fail(f"{url} answered {last}, not {status}, within {timeout_seconds:.0f}s")
