"""The Kubernetes plugin against the real test cluster: an entity's deployments, found by label."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as kube
from sqlalchemy.orm import Session

from tenant_runtime.catalog.descriptors import parse_descriptors
from tenant_runtime.catalog.store import CatalogStore
from tests.tenant_runtime.plugins.conftest import PluginClient

pytestmark = [pytest.mark.marketplace, pytest.mark.k8s]

KWOK_TOLERATION = [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]


@pytest.fixture
def namespace(api: kube.ApiClient) -> Iterator[str]:
    name = f"plugin-{uuid.uuid4().hex[:8]}"
    core = kube.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def _deployment(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, **labels}},
                "spec": {
                    "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
                    "tolerations": KWOK_TOLERATION,
                    "nodeSelector": {"type": "kwok"},
                },
            },
        },
    }


@pytest.fixture
def kubernetes_id(session: Session) -> str:
    """A catalog component whose workloads carry this kubernetes-id label."""
    kubernetes_id = f"payments-{uuid.uuid4().hex[:6]}"
    CatalogStore(session).upsert(
        parse_descriptors(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: payments\n"
            f"  annotations:\n    backstage.io/kubernetes-id: {kubernetes_id}\n"
            "spec:\n  type: service\n  lifecycle: production\n  owner: platform-team\n",
            source="test",
        ),
        location_key=None,
        actor="test",
    )
    session.commit()
    return kubernetes_id


def test_an_entitys_workloads_are_read_from_the_cluster(
    plugin_client: PluginClient,
    kubernetes_id: str,
    api: kube.ApiClient,
    namespace: str,
    kube_cluster: Any,
) -> None:
    apps = kube.AppsV1Api(api)
    apps.create_namespaced_deployment(
        namespace, _deployment("payments-api", {"backstage.io/kubernetes-id": kubernetes_id})
    )
    apps.create_namespaced_deployment(namespace, _deployment("unrelated", {"team": "other"}))
    client = plugin_client("kubernetes", {"kubeconfig": kube_cluster.kubeconfig.read_text()})

    found = client.get("/api/workloads", params={"entity": "component:default/payments"})

    assert found.status_code == 200
    assert [(d["name"], d["namespace"], d["replicas"]) for d in found.json()["deployments"]] == [
        ("payments-api", namespace, 2)
    ]


def test_an_unreachable_cluster_is_a_502_that_says_so(
    plugin_client: PluginClient, kubernetes_id: str
) -> None:
    kubeconfig = (
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
        "    server: https://127.0.0.1:9\ncontexts:\n- name: c\n  context:\n    cluster: c\n"
        "    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"
    )
    client = plugin_client("kubernetes", {"kubeconfig": kubeconfig, "request_timeout_seconds": 2})

    found = client.get("/api/workloads", params={"entity": "component:default/payments"})

    assert found.status_code == 502
    assert found.json()["detail"].startswith("the cluster is unreachable")
