"""Fixtures for the Kubernetes driver's tests: settings for the real test cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client as kube
from kubernetes import config as kube_config
from pydantic import SecretStr

from control_plane.core.settings import Settings
from tests.control_plane.factories import KWOK_TOLERATION


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
