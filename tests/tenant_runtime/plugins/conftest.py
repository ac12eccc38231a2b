from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine

from tenant_runtime.core.database import create_session_factory
from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.plugins.host import discover_plugins
from tenant_runtime.plugins.spec import PluginContext

PluginClient = Callable[..., TestClient[Litestar]]


@pytest.fixture
def plugin_context(
    migrated_settings: RuntimeSettings, engine: Engine
) -> Callable[..., PluginContext]:
    def make(plugin_id: str, config: dict[str, Any] | None = None) -> PluginContext:
        spec = discover_plugins()[plugin_id]
        return PluginContext(
            plugin_id=plugin_id,
            config=spec.validate_config(config or {}),
            settings=migrated_settings,
            sessions=create_session_factory(engine),
        )

    return make


@pytest.fixture
def plugin_client(plugin_context: Callable[..., PluginContext]) -> Iterator[PluginClient]:
    """A test client on one plugin's own app (its paths without the /plugins/<id> prefix)."""
    clients: list[TestClient[Litestar]] = []

    def make(plugin_id: str, config: dict[str, Any] | None = None) -> TestClient[Litestar]:
        spec = discover_plugins()[plugin_id]
        client = TestClient(spec.build_app(plugin_context(plugin_id, config)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
