"""Backstage's own `@backstage/catalog-client`, run by Node against a live runtime.

The runtime is a real process on its own PostgreSQL database; `url:` locations are read
from a real HTTP server over a copy of the Backstage example files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.testenv import services
from tests.tenant_runtime.live import (
    ADMIN_TOKEN,
    SERVICE_TOKEN,
    LiveRuntime,
    file_server,
    live_runtime,
)

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "fixtures" / "backstage-examples"
TENANT_ID = "5e8a2c1d-3b4f-4a6e-9c7d-2f1e0d9c8b7a"


@pytest.fixture(scope="session")
def catalog_client_dir() -> Path:
    """The pinned client, installed by the project's script (cached after the first run)."""
    result = subprocess.run(
        ["bash", str(HERE / "install-client.sh")], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            "could not install @backstage/catalog-client with "
            f"tests/tenant_runtime/conformance/install-client.sh:\n{result.stderr}",
            pytrace=False,
        )
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def served_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the example files, so tests can change what a location holds."""
    root = tmp_path_factory.mktemp("served") / "examples"
    shutil.copytree(EXAMPLES, root)
    return root


@pytest.fixture(scope="module")
def files_url(served_files: Path) -> Iterator[str]:
    with file_server(served_files) as url:
        yield url


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin_url: str,
    files_url: str,
    served_files: Path,
) -> Iterator[LiveRuntime]:
    name = f"backlot_catalog_conformance_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    database_url = services.create_database(postgres_admin_url, name)
    try:
        with live_runtime(
            tmp_path_factory.mktemp("runtime"),
            database_url,
            allow_hosts=[files_url.removeprefix("http://")],
            file_roots=[served_files],
            tenant_id=TENANT_ID,
        ) as running:
            yield running
    finally:
        services.drop_database(postgres_admin_url, name)


class Bridge:
    """One Node process holding a CatalogClient; `call` runs a method and returns its value."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def call(self, method: str, *args: Any) -> Any:
        answer = self.answer(method, *args)
        if not answer["ok"]:
            raise AssertionError(f"{method} failed: {answer['error']}")
        return answer["value"]

    def error(self, method: str, *args: Any) -> dict[str, Any]:
        answer = self.answer(method, *args)
        assert not answer["ok"], f"{method} succeeded with {answer['value']!r}"
        return dict(answer["error"])

    def answer(self, method: str, *args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps({"method": method, "args": list(args)}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"the Node bridge exited: {stderr}")
        return dict(json.loads(line))


def _bridge(client_dir: Path, runtime: LiveRuntime, token: str | None) -> Iterator[Bridge]:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node is needed: run tests/tenant_runtime/conformance/install-client.sh", pytrace=False
        )
    env = {
        **os.environ,
        "CATALOG_CLIENT_DIR": str(client_dir),
        "CATALOG_BASE_URL": runtime.catalog_url,
        "CATALOG_TOKEN": token or "",
    }
    process = subprocess.Popen(
        [node, str(HERE / "bridge.cjs")],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield Bridge(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def client(catalog_client_dir: Path, runtime: LiveRuntime) -> Iterator[Bridge]:
    yield from _bridge(catalog_client_dir, runtime, SERVICE_TOKEN)


@pytest.fixture(scope="module")
def admin_client(catalog_client_dir: Path, runtime: LiveRuntime) -> Iterator[Bridge]:
    yield from _bridge(catalog_client_dir, runtime, ADMIN_TOKEN)


@pytest.fixture(scope="module")
def anonymous_client(catalog_client_dir: Path, runtime: LiveRuntime) -> Iterator[Bridge]:
    yield from _bridge(catalog_client_dir, runtime, None)


@pytest.fixture(scope="module")
def examples_target(files_url: str) -> str:
    return f"{files_url}/catalog-info.yaml"


@pytest.fixture(scope="module")
def examples_location(client: Bridge, examples_target: str) -> dict[str, Any]:
    """The example files registered once, through the client's addLocation."""
    return dict(client.call("addLocation", {"type": "url", "target": examples_target}))
