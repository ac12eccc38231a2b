"""Locations: `file:` ingestion inside the roots, nested Locations, conflicts, orphans,
status errors, refresh, and the access rules around them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenant_runtime.catalog.models import HistoryRecord
from tenant_runtime.catalog.refresh import LocationRefresher
from tenant_runtime.core.database import create_session_factory
from tenant_runtime.core.settings import RuntimeSettings

pytestmark = pytest.mark.catalog

LOCATIONS = "/api/catalog/locations"


def component(name: str, owner: str = "team-a", **metadata: Any) -> str:
    extra = "".join(f"  {key}: {value}\n" for key, value in metadata.items())
    return (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata:\n  name: {name}\n{extra}"
        f"spec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n"
    )


def register(client: TestClient[Litestar], path: Path) -> dict[str, Any]:
    response = client.post(LOCATIONS, json={"type": "file", "target": str(path)})
    assert response.status_code == 201, response.text
    return dict(response.json())


def entity(client: TestClient[Litestar], ref: str) -> dict[str, Any] | None:
    kind, rest = ref.split(":", 1)
    namespace, name = rest.split("/", 1)
    response = client.get(f"/api/catalog/entities/by-name/{kind}/{namespace}/{name}")
    return dict(response.json()) if response.status_code == 200 else None


def test_a_multi_document_file_registers_every_entity(
    client: TestClient[Litestar], catalog_files: Path
) -> None:
    path = catalog_files / "catalog-info.yaml"
    path.write_text(component("alpha") + "---\n" + component("beta") + "---\n")

    register(client, path)

    assert entity(client, "component:default/alpha") is not None
    assert entity(client, "component:default/beta") is not None


def test_a_location_entity_pulls_in_the_files_it_names(
    client: TestClient[Litestar], catalog_files: Path
) -> None:
    (catalog_files / "services").mkdir()
    (catalog_files / "services" / "gamma.yaml").write_text(component("gamma"))
    root = catalog_files / "all.yaml"
    root.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: all\n"
        "spec:\n  targets: [./services/gamma.yaml]\n"
    )

    register(client, root)

    gamma = entity(client, "component:default/gamma")
    assert gamma is not None
    assert gamma["metadata"]["annotations"]["backstage.io/managed-by-location"] == (
        f"file:{catalog_files / 'services' / 'gamma.yaml'}"
    )


def test_a_file_outside_the_roots_is_refused_and_nothing_is_stored(
    client: TestClient[Litestar], tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(component("outsider"))

    response = client.post(LOCATIONS, json={"type": "file", "target": str(outside)})

    assert response.status_code == 400
    assert "outside the catalog's file roots" in response.json()["error"]["message"]
    assert client.get(LOCATIONS).json() == []


def test_a_url_on_a_host_not_allowed_is_refused(client: TestClient[Litestar]) -> None:
    response = client.post(LOCATIONS, json={"target": "https://evil.example/catalog-info.yaml"})

    assert response.status_code == 400
    assert "not in the catalog's allowed hosts" in response.json()["error"]["message"]


def test_a_location_body_with_unknown_fields_is_refused(client: TestClient[Litestar]) -> None:
    response = client.post(LOCATIONS, json={"type": "file", "target": "/x", "rules": []})

    assert response.status_code == 400


def test_the_first_location_to_emit_a_ref_owns_it_and_the_second_gets_an_error(
    client: TestClient[Litestar], catalog_files: Path
) -> None:
    first, second = catalog_files / "first.yaml", catalog_files / "second.yaml"
    first.write_text(component("shared", description="first"))
    second.write_text(component("shared", description="second"))
    register(client, first)

    loser = register(client, second)

    shared = entity(client, "component:default/shared")
    assert shared is not None
    assert shared["metadata"]["description"] == "first"
    location = entity(client, loser["location"]["entityRef"])
    assert location is not None
    [item] = location["status"]["items"]
    assert item["type"] == "backstage.io/catalog-processing"
    assert item["message"].startswith("ConflictError: component:default/shared")


def test_an_invalid_entity_is_reported_on_its_location_and_not_stored(
    client: TestClient[Litestar], catalog_files: Path
) -> None:
    path = catalog_files / "broken.yaml"
    path.write_text(component("fine") + "---\n" + component("not valid"))

    added = register(client, path)

    location = entity(client, added["location"]["entityRef"])
    assert location is not None
    [item] = location["status"]["items"]
    assert "metadata.name 'not valid' is not valid" in item["message"]
    assert entity(client, "component:default/fine") is not None


def test_an_entity_dropped_from_its_file_is_deleted_on_refresh(
    client: TestClient[Litestar], catalog_files: Path
) -> None:
    path = catalog_files / "pair.yaml"
    path.write_text(component("keep") + "---\n" + component("drop"))
    register(client, path)
    path.write_text(component("keep"))

    response = client.post("/api/catalog/refresh", json={"entityRef": "component:default/keep"})

    assert response.status_code == 200
    assert entity(client, "component:default/drop") is None


def test_a_file_that_breaks_keeps_its_entities_and_reports_the_error(
    client: TestClient[Litestar], catalog_files: Path
) -> None:
    path = catalog_files / "fragile.yaml"
    path.write_text(component("sturdy"))
    added = register(client, path)
    path.write_text("this: [is not: valid yaml")

    client.post("/api/catalog/refresh", json={"entityRef": "component:default/sturdy"})

    assert entity(client, "component:default/sturdy") is not None
    location = entity(client, added["location"]["entityRef"])
    assert location is not None
    assert "not valid YAML" in location["status"]["items"][0]["message"]


def test_deleting_a_location_deletes_its_entities(
    client: TestClient[Litestar], catalog_files: Path
) -> None:
    path = catalog_files / "short-lived.yaml"
    path.write_text(component("ephemeral"))
    added = register(client, path)

    response = client.delete(f"{LOCATIONS}/{added['location']['id']}")

    assert response.status_code == 204
    assert entity(client, "component:default/ephemeral") is None


def test_deleting_an_unknown_location_is_404(client: TestClient[Litestar]) -> None:
    response = client.delete(f"{LOCATIONS}/3b0b1a52-0000-4000-8000-000000000000")

    assert response.status_code == 404
    assert response.json()["error"]["name"] == "NotFoundError"


def test_a_viewer_may_read_but_not_register(
    client: TestClient[Litestar], viewer_token: str, catalog_files: Path
) -> None:
    headers = {"Authorization": f"Bearer {viewer_token}"}

    listed = client.get("/api/catalog/entities", headers=headers)
    refused = client.post(
        LOCATIONS, json={"type": "file", "target": str(catalog_files / "x.yaml")}, headers=headers
    )

    assert listed.status_code == 200
    assert refused.status_code == 403
    assert refused.json()["error"]["name"] == "NotAllowedError"


def test_without_credentials_the_api_answers_401_in_backstages_shape(
    anonymous_client: TestClient[Litestar],
) -> None:
    response = anonymous_client.get("/api/catalog/entities")

    assert response.status_code == 401
    assert response.json()["error"]["name"] == "AuthenticationError"
    assert response.json()["response"] == {"statusCode": 401}


def test_the_periodic_refresh_reads_due_locations_again(
    client: TestClient[Litestar],
    catalog_files: Path,
    migrated_settings: RuntimeSettings,
    engine: Any,
) -> None:
    path = catalog_files / "periodic.yaml"
    path.write_text(component("ticking", description="before"))
    register(client, path)
    path.write_text(component("ticking", description="after"))
    settings = migrated_settings.model_copy(update={"catalog_refresh_interval_seconds": 0.001})

    refreshed = LocationRefresher(settings, create_session_factory(engine)).refresh_due()

    ticking = entity(client, "component:default/ticking")
    assert refreshed == 1
    assert ticking is not None
    assert ticking["metadata"]["description"] == "after"


def test_every_change_is_kept_in_the_history_with_its_location(
    client: TestClient[Litestar], catalog_files: Path, session: Session
) -> None:
    path = catalog_files / "history.yaml"
    path.write_text(component("chronicle", description="one"))
    register(client, path)
    path.write_text(component("chronicle", description="two"))
    client.post("/api/catalog/refresh", json={"entityRef": "component:default/chronicle"})

    changes = session.scalars(
        select(HistoryRecord).where(HistoryRecord.entity_ref == "component:default/chronicle")
    ).all()

    assert [c.change for c in changes] == ["created", "updated"]
    assert changes[1].diff == [
        {"op": "replace", "path": "/metadata/description", "old": "one", "value": "two"}
    ]
    assert changes[1].actor == "service:catalog-tests"
    assert changes[1].location_key == f"file:{path}"


def test_the_history_route_is_for_admins(client: TestClient[Litestar], admin_token: str) -> None:
    path = "/api/catalog/entities/by-name/component/default/orders-service/history"

    member = client.get(path)
    admin = client.get(path, headers={"Authorization": f"Bearer {admin_token}"})

    assert member.status_code == 403
    assert [item["change"] for item in admin.json()["items"]] == ["created"]


def test_the_export_holds_every_entity_as_yaml(
    client: TestClient[Litestar], admin_token: str, seed_refs: list[str]
) -> None:
    response = client.get(
        "/api/catalog/export",
        params={"format": "yaml"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    documents = list(yaml.safe_load_all(response.text))
    assert response.status_code == 200
    assert (
        sorted(
            f"{d['kind']}:{d['metadata']['namespace']}/{d['metadata']['name']}".lower()
            for d in documents
        )
        == seed_refs
    )


def test_a_missing_optional_file_is_not_an_error(
    client: TestClient[Litestar], catalog_files: Path
) -> None:
    response = client.post(
        LOCATIONS,
        json={"type": "file", "target": str(catalog_files / "absent.yaml"), "presence": "optional"},
    )

    location = entity(client, response.json()["location"]["entityRef"])
    assert location is not None
    assert "status" not in location


def test_a_missing_required_file_is_a_not_found_error_on_its_location(
    client: TestClient[Litestar], catalog_files: Path
) -> None:
    added = register(client, catalog_files / "absent.yaml")

    location = entity(client, added["location"]["entityRef"])
    assert location is not None
    assert location["status"]["items"][0]["error"]["name"] == "NotFoundError"
