"""Private PostgreSQL and Redis instances for the test suite, started on demand.

Standard library only: this runs before the virtualenv exists (``make test`` bootstraps
with it) and is imported by the pytest fixtures as ``infra.testenv.services``.

Everything lives under ``$BACKLOT_CACHE_DIR/testenv`` (default ``~/.cache/backlot``): the
PostgreSQL data directory is kept between runs, so only the first start pays for initdb.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "ServiceUnavailable",
    "cache_dir",
    "chromium_path",
    "create_database",
    "database_exists",
    "drop_database",
    "ensure_postgres",
    "ensure_redis",
    "main",
    "postgres_url",
    "redis_url",
    "stop_all",
]

HOST = "127.0.0.1"
DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63790
DEFAULT_CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT = 60.0
INSTALL_HINT = "run `make test-deps` (infra/testenv/install.sh) to install them"
LOG_TAIL_LINES = 30
# Unix socket paths are limited to 108 bytes (sun_path); past that PostgreSQL cannot start.
MAX_SOCKET_PATH = 100
DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


_Predicate = Callable[[], bool]


class ServiceUnavailable(RuntimeError):
    """A test service could not be found or started; the message says what to do."""


# --- paths -------------------------------------------------------------------------------


def cache_dir() -> Path:
    """The root of everything the test services keep: ``$BACKLOT_CACHE_DIR/testenv``."""
    root = os.environ.get("BACKLOT_CACHE_DIR") or str(Path.home() / ".cache" / "backlot")
    return Path(root).expanduser() / "testenv"


@dataclass(frozen=True)
class _PostgresPaths:
    data: Path
    run: Path
    log: Path
    lock: Path


@dataclass(frozen=True)
class _RedisPaths:
    dir: Path
    pidfile: Path
    log: Path
    lock: Path


def _postgres_paths() -> _PostgresPaths:
    root = cache_dir()
    return _PostgresPaths(
        data=root / "postgres",
        run=root / "postgres-run",
        log=root / "logs" / "postgres.log",
        lock=root / "postgres.lock",
    )


def _redis_paths() -> _RedisPaths:
    root = cache_dir()
    return _RedisPaths(
        dir=root / "redis",
        pidfile=root / "redis" / "redis.pid",
        log=root / "logs" / "redis.log",
        lock=root / "redis.lock",
    )


def _port(variable: str, default: int) -> int:
    raw = os.environ.get(variable)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ServiceUnavailable(f"{variable}={raw!r} is not a port number") from None


def _pg_port() -> int:
    return _port("BACKLOT_TEST_PG_PORT", DEFAULT_PG_PORT)


def _redis_port() -> int:
    return _port("BACKLOT_TEST_REDIS_PORT", DEFAULT_REDIS_PORT)


def postgres_url() -> str:
    """The superuser URL of the test PostgreSQL instance (whether or not it runs)."""
    return f"postgresql+psycopg://postgres@{HOST}:{_pg_port()}/postgres"


def redis_url() -> str:
    """The URL of the test Redis instance (whether or not it runs)."""
    return f"redis://{HOST}:{_redis_port()}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # pytest-xdist workers race to start the same server; the first one holds the lock
    # while it starts it and the others then find it answering.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    tail = "\n".join(lines[-LOG_TAIL_LINES:])
    return f"last lines of {path}:\n{tail}"


def _run(
    command: Sequence[str], *, timeout: float = START_TIMEOUT, what: str, log: Path | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            # The postgres OS user cannot enter root's home; "/" is readable by everyone.
            cwd="/",
        )
    except OSError as error:
        raise ServiceUnavailable(f"{what} could not run {command[0]}: {error}") from None
    except subprocess.TimeoutExpired:
        detail = _log_tail(log) if log else ""
        raise ServiceUnavailable(f"{what} timed out after {timeout:.0f}s\n{detail}") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        detail = f"\n{_log_tail(log)}" if log else ""
        raise ServiceUnavailable(
            f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{output}{detail}"
        )
    return result


# --- PostgreSQL --------------------------------------------------------------------------


def _postgres_bin_dir() -> Path | None:
    def major(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates = [
        path
        for path in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
        if (path / "pg_ctl").is_file() and (path / "initdb").is_file()
    ]
    if candidates:
        return candidates[0]
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and shutil.which("initdb"):
        return Path(pg_ctl).resolve().parent
    return None


def _require_postgres_bin() -> Path:
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        raise ServiceUnavailable(f"PostgreSQL server binaries not found: {INSTALL_HINT}")
    return bin_dir


def _client_tool(name: str) -> str:
    bin_dir = _postgres_bin_dir()
    if bin_dir is not None and (bin_dir / name).is_file():
        return str(bin_dir / name)
    found = shutil.which(name)
    if found is None:
        raise ServiceUnavailable(f"PostgreSQL client `{name}` not found: {INSTALL_HINT}")
    return found


def _postgres_answers(port: int) -> bool:
    try:
        result = subprocess.run(
            [
                _client_tool("pg_isready"),
                "--quiet",
                f"--host={HOST}",
                f"--port={port}",
                "--username=postgres",
                "--dbname=postgres",
                "--timeout=2",
            ],
            check=False,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root, so under root its programs run as `postgres`."""
    if os.geteuid() != 0:
        return command
    # The data dir sits under root's home (mode 700), which the postgres user cannot
    # enter. CAP_DAC_READ_SEARCH lets it traverse there without loosening /root's mode.
    return [
        "setpriv",
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
        "--",
        *command,
    ]


def _give_to_postgres_user(*paths: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceUnavailable(
            f"PostgreSQL refuses to run as root and there is no `postgres` OS user: {INSTALL_HINT}"
        ) from None
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)


def _initdb(bin_dir: Path, paths: _PostgresPaths) -> None:
    # A data dir from another major version cannot be started; it holds only throwaway
    # test databases, so it is made anew.
    version_file = paths.data / "PG_VERSION"
    wanted = _major_version(bin_dir)
    if version_file.is_file() and version_file.read_text().strip() == wanted:
        return
    if paths.data.exists():
        shutil.rmtree(paths.data)
    # initdb into a scratch dir and rename, so an interrupted initdb never leaves a
    # half-made data dir that later starts would trip over.
    scratch = paths.data.with_name(paths.data.name + ".initdb")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700, parents=True)
    _give_to_postgres_user(scratch)
    _run(
        _as_postgres_user(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(scratch),
                "--username=postgres",
                # Throwaway test instance bound to 127.0.0.1 only: trust auth is enough.
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ]
        ),
        timeout=180,
        what="initdb",
    )
    with (scratch / "postgresql.conf").open("a") as conf:
        conf.write("\ninclude_if_exists = 'backlot_testenv.conf'\n")
    scratch.rename(paths.data)


def _major_version(bin_dir: Path) -> str:
    result = _run([str(bin_dir / "pg_ctl"), "--version"], what="pg_ctl --version")
    match = re.search(r"(\d+)(?:\.\d+)?", result.stdout)
    if match is None:
        raise ServiceUnavailable(f"cannot read the PostgreSQL version from {result.stdout!r}")
    return match.group(1)


def _write_settings(paths: _PostgresPaths, port: int) -> None:
    socket_dir = str(paths.run)
    if len(socket_dir) + len(f"/.s.PGSQL.{port}") > MAX_SOCKET_PATH:
        socket_dir = ""  # TCP only: the cache path is too long for a unix socket
    settings = {
        "listen_addresses": HOST,
        "port": str(port),
        "unix_socket_directories": socket_dir,
        "max_connections": "200",
        # Durability is worthless for throwaway test data; speed is not.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "logging_collector": "off",
    }
    lines = [f"{key} = '{value}'" for key, value in settings.items()]
    settings_file = paths.data / "backlot_testenv.conf"
    settings_file.write_text(
        "# Written by infra/testenv/services.py on every start.\n" + "\n".join(lines) + "\n"
    )
    _give_to_postgres_user(settings_file)


def ensure_postgres() -> str:
    """Start the private test PostgreSQL unless it already answers; return its superuser URL."""
    port = _pg_port()
    if _postgres_answers(port):
        return postgres_url()
    bin_dir = _require_postgres_bin()
    paths = _postgres_paths()
    with _locked(paths.lock):
        if _postgres_answers(port):
            return postgres_url()
        _initdb(bin_dir, paths)
        paths.run.mkdir(parents=True, exist_ok=True)
        paths.log.parent.mkdir(parents=True, exist_ok=True)
        paths.log.touch()
        _give_to_postgres_user(paths.data, paths.run, paths.log)
        _write_settings(paths, port)
        _run(
            _as_postgres_user(
                [
                    str(bin_dir / "pg_ctl"),
                    "--pgdata",
                    str(paths.data),
                    "--log",
                    str(paths.log),
                    "--wait",
                    f"--timeout={START_TIMEOUT:.0f}",
                    "start",
                ]
            ),
            timeout=START_TIMEOUT + 10,
            what=f"starting PostgreSQL on {HOST}:{port}",
            log=paths.log,
        )
        _wait_until(
            lambda: _postgres_answers(port),
            f"PostgreSQL on {HOST}:{port} does not accept connections",
            paths.log,
        )
    return postgres_url()


def _stop_postgres() -> bool:
    paths = _postgres_paths()
    bin_dir = _postgres_bin_dir()
    if bin_dir is None or not (paths.data / "postmaster.pid").exists():
        return False
    with _locked(paths.lock):
        _run(
            _as_postgres_user(
                [
                    str(bin_dir / "pg_ctl"),
                    "--pgdata",
                    str(paths.data),
                    "--mode=fast",
                    "--wait",
                    "stop",
                ]
            ),
            what="stopping PostgreSQL",
            log=paths.log,
        )
    return True


def _psql_args(admin_url: str) -> list[str]:
    parts = urlsplit(admin_url)
    if not parts.scheme.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {admin_url!r}")
    return [
        _client_tool("psql"),
        "--no-psqlrc",
        "--quiet",
        "--tuples-only",
        "--no-align",
        "--set=ON_ERROR_STOP=1",
        f"--host={parts.hostname or HOST}",
        f"--port={parts.port or 5432}",
        f"--username={parts.username or 'postgres'}",
        f"--dbname={parts.path.lstrip('/') or 'postgres'}",
    ]


def _checked_name(name: str) -> str:
    if not DATABASE_NAME.fullmatch(name):
        raise ValueError(f"database name {name!r} must match {DATABASE_NAME.pattern}")
    return name


def _psql(admin_url: str, sql: str) -> str:
    args = _psql_args(admin_url)
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if password := urlsplit(admin_url).password:
        env["PGPASSWORD"] = password
    result = subprocess.run(
        [*args, "--command", sql], capture_output=True, text=True, env=env, check=False, timeout=120
    )
    if result.returncode != 0:
        raise ServiceUnavailable(
            f"psql against {urlsplit(admin_url).netloc} failed: {result.stderr.strip()}\n"
            "Is the test PostgreSQL running? Start it with `python3 -m infra.testenv.services up`."
        )
    return result.stdout.strip()


def database_exists(admin_url: str, name: str) -> bool:
    """Whether the instance behind ``admin_url`` has a database called ``name``."""
    _checked_name(name)
    return _psql(admin_url, f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"


def create_database(admin_url: str, name: str, *, drop_existing: bool = True) -> str:
    """Create database ``name`` (dropping any old one unless told not to); return its URL."""
    _checked_name(name)
    if drop_existing:
        drop_database(admin_url, name)
    if drop_existing or not database_exists(admin_url, name):
        _psql(admin_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}", query="", fragment=""))


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting anyone still using it."""
    _checked_name(name)
    _psql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Redis -------------------------------------------------------------------------------


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as connection:
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _redis_server() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None
    )
    if found is None:
        raise ServiceUnavailable(f"Redis server binary `redis-server` not found: {INSTALL_HINT}")
    return found


def ensure_redis() -> str:
    """Start the private test Redis unless something already answers PING; return its URL."""
    port = _redis_port()
    if _redis_ping(port):
        return redis_url()
    server = _redis_server()
    paths = _redis_paths()
    with _locked(paths.lock):
        if _redis_ping(port):
            return redis_url()
        paths.dir.mkdir(parents=True, exist_ok=True)
        paths.log.parent.mkdir(parents=True, exist_ok=True)
        _run(
            [
                server,
                "--bind",
                HOST,
                "--port",
                str(port),
                "--daemonize",
                "yes",
                "--dir",
                str(paths.dir),
                # No persistence: every run starts from whatever the tests write.
                "--save",
                "",
                "--appendonly",
                "no",
                "--pidfile",
                str(paths.pidfile),
                "--logfile",
                str(paths.log),
            ],
            what=f"starting Redis on {HOST}:{port}",
            log=paths.log,
        )
        _wait_until(
            lambda: _redis_ping(port), f"Redis on {HOST}:{port} does not answer PING", paths.log
        )
    return redis_url()


def _stop_redis() -> bool:
    port = _redis_port()
    paths = _redis_paths()
    if not _redis_ping(port):
        paths.pidfile.unlink(missing_ok=True)
        return False
    with _locked(paths.lock):
        with (
            contextlib.suppress(OSError),
            socket.create_connection((HOST, port), timeout=2) as conn,
        ):
            conn.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
            conn.recv(64)  # the server closes the connection as it exits
        try:
            _wait_until(lambda: not _redis_ping(port), "Redis did not shut down", paths.log, 10)
        except ServiceUnavailable:
            try:
                pid = int(paths.pidfile.read_text().strip())
            except (OSError, ValueError):
                raise ServiceUnavailable(
                    f"Redis on {HOST}:{port} ignored SHUTDOWN and {paths.pidfile} names no "
                    "process: stop it by hand"
                ) from None
            os.kill(pid, signal.SIGTERM)
            _wait_until(lambda: not _redis_ping(port), "Redis did not stop", paths.log, 10)
    return True


# --- shared ------------------------------------------------------------------------------


def _wait_until(ready: _Predicate, failure: str, log: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    raise ServiceUnavailable(f"{failure} after {timeout:.0f}s\n{_log_tail(log)}")


def stop_all() -> None:
    """Stop both test servers; the PostgreSQL data dir is kept for the next start."""
    _stop_postgres()
    _stop_redis()


def chromium_path() -> str:
    """Debian's Chromium for Playwright's ``executable_path`` (``BACKLOT_CHROMIUM`` overrides)."""
    path = os.environ.get("BACKLOT_CHROMIUM") or DEFAULT_CHROMIUM
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        raise ServiceUnavailable(f"Chromium not found at {path}: run `make test-deps`")
    return path


# --- CLI ---------------------------------------------------------------------------------


def _status() -> None:
    pg_port, redis_port = _pg_port(), _redis_port()
    pg_paths, redis_paths = _postgres_paths(), _redis_paths()
    if _postgres_answers(pg_port):
        print(f"postgres: running on {HOST}:{pg_port} ({postgres_url()})")
    else:
        print(f"postgres: not running (would listen on {HOST}:{pg_port})")
    print(f"  data dir {pg_paths.data}, log {pg_paths.log}")
    if _redis_ping(redis_port):
        print(f"redis: running on {HOST}:{redis_port} ({redis_url()})")
    else:
        print(f"redis: not running (would listen on {HOST}:{redis_port})")
    print(f"  dir {redis_paths.dir}, log {redis_paths.log}")
    try:
        print(f"chromium: {chromium_path()}")
    except ServiceUnavailable as error:
        print(f"chromium: {error}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra.testenv.services up|down|status|env``."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.testenv.services",
        description="Start, stop or show the private PostgreSQL and Redis used by the tests.",
    )
    parser.add_argument(
        "command",
        choices=["up", "down", "status", "env"],
        help="up: start both; down: stop both; status: show them; "
        "env: start both and print their URLs as NAME=value lines",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            print(f"postgres: ready at {ensure_postgres()}")
            print(f"redis: ready at {ensure_redis()}")
        elif args.command == "down":
            stop_all()
            print("postgres and redis stopped")
        elif args.command == "status":
            _status()
        else:
            postgres, redis = ensure_postgres(), ensure_redis()
            print(f"BACKLOT_TEST_POSTGRES_URL={postgres}")
            print(f"BACKLOT_TEST_REDIS_URL={redis}")
    except ServiceUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
