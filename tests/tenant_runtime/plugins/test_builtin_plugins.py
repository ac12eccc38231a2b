"""The built-in plugins' own behaviour, each on its app over the seeded example catalog."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tenant_runtime.catalog.descriptors import parse_descriptors
from tenant_runtime.catalog.store import CatalogStore
from tenant_runtime.plugins.builtin.cicd import sign
from tenant_runtime.plugins.host import discover_plugins
from tests.tenant_runtime.plugins.conftest import PluginClient

pytestmark = pytest.mark.marketplace

SECRET = "a-webhook-secret-of-some-length"
SERVICE = "component:default/orders-service"


def test_every_builtin_plugin_is_found_through_its_entry_point() -> None:
    assert sorted(discover_plugins()) == ["cicd", "cost", "kubernetes", "scorecards", "techdocs"]


def _run(status: str, run_id: str = "41") -> bytes:
    return json.dumps(
        {
            "entity_ref": SERVICE,
            "pipeline": "build",
            "run_id": run_id,
            "status": status,
            "branch": "main",
        }
    ).encode()


def test_a_signed_ci_run_is_shown_for_its_entity(plugin_client: PluginClient) -> None:
    client = plugin_client("cicd", {"webhook_secret": SECRET})
    for status in ("running", "succeeded"):
        body = _run(status)
        sent = client.post(
            "/api/webhook", content=body, headers={"x-backlot-signature": sign(SECRET, body)}
        )
        assert sent.status_code == 202
    runs = client.get("/api/runs", params={"entity": SERVICE}).json()
    assert [(r["run_id"], r["status"]) for r in runs] == [("41", "succeeded")]


def test_a_ci_run_signed_with_another_secret_is_refused(plugin_client: PluginClient) -> None:
    client = plugin_client("cicd", {"webhook_secret": SECRET})
    body = _run("failed")
    sent = client.post(
        "/api/webhook", content=body, headers={"x-backlot-signature": sign("x" * 20, body)}
    )
    assert sent.status_code == 401
    assert client.get("/api/runs", params={"entity": SERVICE}).json() == []


CSV = (
    "period,service,amount,currency,entity,team\n"
    "2026-10,ec2,120.50,USD,component:default/orders-service,\n"
    "2026-10,s3,10.25,USD,component:default/orders-service,\n"
    "2026-10,rds,99.00,USD,,data-team\n"
)


def test_a_cost_report_gives_totals_per_entity_and_per_team(plugin_client: PluginClient) -> None:
    client = plugin_client("cost")
    assert (
        client.post("/api/reports", content=CSV, headers={"content-type": "text/csv"}).status_code
        == 201
    )
    entity = client.get("/api/costs", params={"entity": SERVICE}).json()
    teams = client.get("/api/teams").json()
    assert [(t["period"], t["amount"]) for t in entity] == [("2026-10", "130.75")]
    assert [(t["key"], t["amount"]) for t in teams] == [
        ("data-team", "99.00"),
        ("platform-team", "130.75"),
    ]


def test_a_cost_report_with_a_bad_line_stores_nothing_and_names_the_line(
    plugin_client: PluginClient,
) -> None:
    client = plugin_client("cost")
    bad = CSV + "2026-10,ec2,lots,USD,component:default/orders-service,\n"
    sent = client.post("/api/reports", content=bad, headers={"content-type": "text/csv"})
    assert (sent.status_code, sent.json()["detail"]) == (
        400,
        "cost report line 4: amount must be a number",
    )
    assert client.get("/api/teams").json() == []


@pytest.fixture
def documented(session: Session, tmp_path: Path) -> str:
    """A component whose catalog file sits next to a docs/ folder, as in a repository."""
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "index.md").write_text("# Payments\n\nHow refunds <script>x</script> work.\n")
    (repo / "docs" / "runbook.md").write_text("# Runbook\n\nRestart the reconciler.\n")
    descriptor = (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: payments\n"
        "  annotations:\n    backstage.io/techdocs-ref: dir:.\n"
        f"    backstage.io/managed-by-location: file:{repo / 'catalog-info.yaml'}\n"
        "spec:\n  type: service\n  lifecycle: production\n  owner: group:default/platform-team\n"
    )
    CatalogStore(session).upsert(
        parse_descriptors(descriptor, source="test"), location_key=None, actor="test"
    )
    session.commit()
    return "component/default/payments"


def test_techdocs_renders_an_entitys_markdown_without_its_raw_html(
    plugin_client: PluginClient, documented: str
) -> None:
    page = plugin_client("techdocs").get(f"/entity/{documented}")
    assert page.status_code == 200
    assert "<h1>Payments</h1>" in page.text
    assert "<script>x</script>" not in page.text


def test_techdocs_finds_pages_by_their_words(
    plugin_client: PluginClient, documented: str, plugin_context: Callable[..., object]
) -> None:
    client = plugin_client("techdocs")
    client.get(f"/entity/{documented}")
    hits = client.get("/api/search", params={"q": "reconciler"}).json()
    assert [(h["entity_ref"], h["path"]) for h in hits] == [
        ("component:default/payments", "runbook.md")
    ]


def test_scorecards_score_each_entity_and_each_team(plugin_client: PluginClient) -> None:
    client = plugin_client("scorecards")
    cards = {c["entity_ref"]: c for c in client.get("/api/scorecards").json()}
    teams = client.get("/api/teams").json()
    assert cards[SERVICE]["checks"][0] == {
        "id": "owner",
        "title": "Has an owner",
        "level": "bronze",
        "passed": True,
    }
    assert [t["team"] for t in teams] == ["platform-team"]
