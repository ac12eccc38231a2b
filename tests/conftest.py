"""Fixtures shared by the whole suite: real PostgreSQL and Redis, started by the suite itself."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as kube
from kubernetes import config as kube_config
from playwright.sync_api import Browser, Playwright, sync_playwright
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core import migrations
from control_plane.core.database import build_engine, build_session_factory
from control_plane.core.settings import Settings
from infra.testenv import services
from tests.control_plane.factories import KWOK_TOLERATION


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    try:
        return services.ensure_postgres()
    except services.ServiceUnavailable as exc:
        pytest.fail(f"PostgreSQL is needed and could not be started: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        return services.ensure_redis()
    except services.ServiceUnavailable as exc:
        pytest.fail(f"Redis is needed and could not be started: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    """A migrated control-plane database for this test process (one per parallel worker)."""
    name = f"backlot_test_{_worker_suffix()}"
    url = services.create_database(postgres_admin_url, name)
    migrations.upgrade(url)
    yield url
    services.drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = build_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions bound to one connection inside a transaction rolled back after the test.

    Code under test may commit: each commit only releases a savepoint.
    """
    with engine.connect() as connection:
        transaction = connection.begin()
        yield sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        transaction.rollback()


@pytest.fixture
def db_session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return Settings(
        env="test",
        data_dir=tmp_path / "backlot",
        database_url=database_url,
        broker_url=f"{redis_url}/1",
        secret_key="test-secret-key-of-enough-length-00",  # type: ignore[arg-type]
        runtime_start_timeout_seconds=20,
        reconcile_lease_seconds=5,
    )


@pytest.fixture(scope="session")
def kube_cluster() -> Any:
    """The real test cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok)."""
    from infra.cluster import cluster  # noqa: PLC0415 - only k8s tests need it

    try:
        return cluster.ensure_cluster()
    except cluster.ClusterUnavailable as exc:
        pytest.fail(f"the Kubernetes test cluster could not be started: {exc}", pytrace=False)


@pytest.fixture
def kube_settings(settings: Settings, kube_cluster: Any, postgres_admin_url: str) -> Settings:
    return settings.model_copy(
        update={
            "runtime_driver": "kubernetes",
            "kube_config": str(kube_cluster.kubeconfig),
            "kube_tolerations": json.dumps(KWOK_TOLERATION),
            "kube_node_selector": json.dumps({"type": "kwok"}),
            "tenant_database_admin_url": SecretStr(postgres_admin_url),
            "base_domain": "portals.example",
            "runtime_start_timeout_seconds": 90,
        }
    )


@pytest.fixture
def api(kube_cluster: Any) -> kube.ApiClient:
    return kube_config.new_client_from_config(config_file=str(kube_cluster.kubeconfig))


# One Playwright driver and one headless Chromium for every browser test of the run: a
# second sync_playwright() in the same process fails, and a browser per module costs seconds.
CHROMIUM_ARGS = [
    "--no-sandbox",  # the suite runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    try:
        executable = services.chromium_path()
    except services.ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    browser = playwright_driver.chromium.launch(
        executable_path=executable, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def module_database_url(request: pytest.FixtureRequest, postgres_admin_url: str) -> Iterator[str]:
    """A migrated control-plane database of this test module's own, dropped after it."""
    module = str(request.module.__name__).rsplit(".", 1)[-1]
    name = f"backlot_test_{_worker_suffix()}_{module}"[:63]
    url = services.create_database(postgres_admin_url, name)
    try:
        migrations.upgrade(url)
        yield url
    finally:
        services.drop_database(postgres_admin_url, name)


@pytest.fixture
def committed_sessions(module_database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions that really commit, on the module's own database.

    For tests where a served control plane, a worker or a portal's uplink use the database
    from threads of their own, which one shared connection cannot carry. What they commit
    stays out of the shared test database, where other tests count rows.
    """
    engine = build_engine(module_database_url)
    yield build_session_factory(engine)
    engine.dispose()
