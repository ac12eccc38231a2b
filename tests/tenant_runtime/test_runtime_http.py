"""Probes and the portal home page."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tenant_runtime.app import create_app
from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.migrate import migrate

pytestmark = pytest.mark.catalog


def test_healthz_answers_without_a_database(runtime_settings: RuntimeSettings) -> None:
    with TestClient(create_app(runtime_settings)) as client:
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "tenant_id": runtime_settings.tenant_id}


def test_readyz_is_not_ready_until_migrate_has_run(runtime_settings: RuntimeSettings) -> None:
    # The directory exists (the control plane creates DATA_DIR) but nothing was migrated.
    (runtime_settings.data_dir / "db").mkdir()
    with TestClient(create_app(runtime_settings)) as client:
        before = client.get("/readyz")
        migrate(runtime_settings)
        after = client.get("/readyz")

    assert before.status_code == 503
    assert before.json() == {
        "status": "not ready",
        "reason": "database schema is missing: run `migrate` first",
    }
    assert after.status_code == 200
    assert after.json() == {"status": "ready"}


def test_readyz_is_not_ready_when_the_database_cannot_be_opened(
    runtime_settings: RuntimeSettings,
) -> None:
    settings = runtime_settings.model_copy(
        update={"database_url": f"sqlite:///{runtime_settings.data_dir}/missing/dir/runtime.db"}
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "reason": "database unavailable (OperationalError)",
    }


def test_home_page_shows_the_organization_and_its_catalog(
    client: TestClient[Litestar], seed_refs: list[str]
) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<h1>Acme Rockets</h1>" in html
    assert "<title>Acme Rockets developer portal</title>" in html
    assert '<table id="catalog">' in html
    assert re.findall(r'data-entity-ref="([^"]+)"', html) == seed_refs


def test_home_page_rows_show_kind_name_summary_and_owner(client: TestClient[Litestar]) -> None:
    html = client.get("/").text

    row = re.search(
        r'<tr data-entity-ref="component:default/orders-service">(.*?)</tr>', html, re.S
    )
    assert row is not None
    cells = [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]
    assert cells == ["Component", "orders-service", "Orders service", "platform-team"]


def test_home_page_escapes_the_organization_name(runtime_settings: RuntimeSettings) -> None:
    settings = runtime_settings.model_copy(update={"organization_name": "<script>x</script> & Co"})
    migrate(settings)
    with TestClient(create_app(settings)) as client:
        html = client.get("/").text

    assert "<h1>&lt;script&gt;x&lt;/script&gt; &amp; Co</h1>" in html
    assert "<script>x" not in html


def test_responses_carry_a_request_id(client: TestClient[Litestar]) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "req-42"})
    generated = client.get("/healthz")

    assert given.headers["x-request-id"] == "req-42"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])


def test_metrics_are_exposed_for_prometheus(client: TestClient[Litestar]) -> None:
    client.get("/api/catalog/entities")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert "backlot_runtime_requests_total{" in response.text
    assert 'tenant_id="3f2b9c1e-0d4a-4c55-9a61-7f1e2d3c4b5a"' in response.text
