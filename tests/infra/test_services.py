"""The private PostgreSQL and Redis that infra/testenv/services.py starts for the suite."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from infra.testenv import services

pytestmark = pytest.mark.integration

HOW_TO_START = "start them with `python3 -m infra.testenv.services up` (after `make test-deps`)"


def _psql_command(url: str) -> list[str]:
    parts = urlsplit(url)
    return [
        "psql",
        "-X",
        "-At",
        f"--host={parts.hostname}",
        f"--port={parts.port}",
        f"--username={parts.username}",
        f"--dbname={parts.path.lstrip('/')}",
    ]


def _psql(url: str, sql: str) -> str:
    result = subprocess.run(
        [*_psql_command(url), "--command", sql], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"psql against {url} failed: {result.stderr}; {HOW_TO_START}"
    return result.stdout.strip()


def _redis_command(url: str, *words: str) -> bytes:
    parts = urlsplit(url)
    request = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as connection:
        connection.sendall(request.encode())
        return connection.recv(1024)


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _database_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}"


def test_ensure_postgres_serves_queries() -> None:
    url = services.ensure_postgres()

    assert _psql(url, "SELECT 40 + 2") == "42"


def test_ensure_postgres_twice_returns_the_same_url() -> None:
    assert services.ensure_postgres() == services.ensure_postgres()


def test_postgres_runs_with_the_test_settings() -> None:
    url = services.ensure_postgres()

    settings = _psql(
        url,
        "SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_settings "
        "WHERE name IN ('fsync', 'listen_addresses', 'max_connections')",
    )

    assert settings == "fsync=off,listen_addresses=127.0.0.1,max_connections=200"


def test_create_database_makes_a_database_and_drop_removes_it() -> None:
    admin = services.ensure_postgres()
    name = _database_name("infra_create_drop")
    exists = f"SELECT count(*) FROM pg_database WHERE datname = '{name}'"

    url = services.create_database(admin, name)
    created = _psql(admin, exists)
    services.drop_database(admin, name)

    assert (
        url
        == f"postgresql+psycopg://postgres@127.0.0.1:{admin.rsplit(':', 1)[1].split('/')[0]}/{name}"
    )
    assert created == "1"
    assert _psql(admin, exists) == "0"


def test_create_database_replaces_an_existing_one_by_default() -> None:
    admin = services.ensure_postgres()
    name = _database_name("infra_replace")
    url = services.create_database(admin, name)
    _psql(url, "CREATE TABLE leftover (id int)")

    services.create_database(admin, name)

    assert _psql(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'leftover'") == "0"
    services.drop_database(admin, name)


def test_create_database_keeps_an_existing_one_when_asked() -> None:
    admin = services.ensure_postgres()
    name = _database_name("infra_keep")
    url = services.create_database(admin, name)
    _psql(url, "CREATE TABLE kept (id int)")

    services.create_database(admin, name, drop_existing=False)

    assert _psql(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'kept'") == "1"
    services.drop_database(admin, name)


def test_drop_database_disconnects_open_sessions() -> None:
    admin = services.ensure_postgres()
    name = _database_name("infra_busy")
    url = services.create_database(admin, name)
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    holder = subprocess.Popen(
        [
            "psql",
            "-X",
            "-h",
            host,
            "-p",
            port,
            "-U",
            "postgres",
            "-d",
            name,
            "-c",
            "SELECT pg_sleep(60)",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_session(admin, name)
        services.drop_database(admin, name)
    finally:
        holder.kill()
        holder.wait()

    assert _psql(admin, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == "0"


def _wait_for_session(admin: str, name: str) -> None:
    for _ in range(100):
        if _psql(admin, f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'") != "0":
            return
        time.sleep(0.05)
    pytest.fail(f"no session ever connected to {name}")


def test_create_database_rejects_an_unsafe_name() -> None:
    admin = services.ensure_postgres()

    with pytest.raises(ValueError, match="must match"):
        services.create_database(admin, 'x"; DROP DATABASE postgres; --')


def test_ensure_redis_answers_ping() -> None:
    url = services.ensure_redis()

    assert _redis_command(url, "PING") == b"+PONG\r\n", HOW_TO_START


def test_ensure_redis_twice_returns_the_same_url() -> None:
    assert services.ensure_redis() == services.ensure_redis()


def test_chromium_path_points_at_an_executable() -> None:
    path = services.chromium_path()

    assert os.access(path, os.X_OK), "Chromium is missing: run `make test-deps`"


def test_chromium_path_says_how_to_install_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKLOT_CHROMIUM", "/nonexistent/chromium")

    with pytest.raises(services.ServiceUnavailable, match="run `make test-deps`"):
        services.chromium_path()


def test_missing_postgres_binaries_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKLOT_TEST_PG_PORT", str(_free_port()))
    monkeypatch.setattr(services, "_postgres_bin_dir", lambda: None)
    monkeypatch.setattr(services, "_client_tool", lambda name: "pg_isready")

    with pytest.raises(services.ServiceUnavailable, match=r"not found: run `make test-deps`"):
        services.ensure_postgres()


def test_stop_all_then_ensure_restarts_on_the_kept_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A second, private pair of servers, so the shared ones other tests use keep running.
    monkeypatch.setenv("BACKLOT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("BACKLOT_TEST_PG_PORT", str(_free_port()))
    monkeypatch.setenv("BACKLOT_TEST_REDIS_PORT", str(_free_port()))
    admin = services.ensure_postgres()
    redis = services.ensure_redis()
    services.create_database(admin, "survives_restart")
    try:
        services.stop_all()
        stopped = (_answers(admin), _answers(redis))

        assert services.ensure_postgres() == admin
        assert services.ensure_redis() == redis
        assert stopped == (False, False)
        assert (
            _psql(admin, "SELECT count(*) FROM pg_database WHERE datname = 'survives_restart'")
            == "1"
        )
    finally:
        services.stop_all()
