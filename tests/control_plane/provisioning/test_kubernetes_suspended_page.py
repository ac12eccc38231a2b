"""A suspended portal's Ingress leads to the control plane's page, in the real apiserver.

The test cluster runs no ingress controller, so what is checked is what the apiserver holds:
the Ingress's backend and rewrite, and the ExternalName Service it names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.base import RuntimeSpec
from control_plane.provisioning.drivers.kubernetes.driver import KubernetesDriver

pytestmark = [pytest.mark.stripe, pytest.mark.k8s, pytest.mark.integration]


@pytest.fixture
def driver(kube_settings: Settings) -> KubernetesDriver:
    return KubernetesDriver(
        kube_settings.model_copy(
            update={
                "kube_control_plane_namespace": "backlot-system",
                "kube_control_plane_service": "backlot-api",
                "kube_control_plane_service_port": 8080,
            }
        )
    )


@pytest.fixture
def suspended(driver: KubernetesDriver) -> Iterator[RuntimeSpec]:
    """A portal that was live, then suspended; removed afterwards."""
    tenant_id = str(uuid4())
    spec = RuntimeSpec(tenant_id, f"susp-{tenant_id[:8]}", "Initech", "0.1.0", "small")
    driver.ensure(spec, lambda _: None)
    driver.suspend(spec)
    yield spec
    driver.destroy(spec)
    driver.purge(spec)


def _ingress(api: kube.ApiClient, spec: RuntimeSpec) -> Any:
    return kube.NetworkingV1Api(api).read_namespaced_ingress("portal", f"t-{spec.slug}")


def _backend(api: kube.ApiClient, spec: RuntimeSpec) -> str:
    rule = _ingress(api, spec).spec.rules[0]
    return str(rule.http.paths[0].backend.service.name)


def test_suspending_routes_the_ingress_to_the_page_service(
    suspended: RuntimeSpec, api: kube.ApiClient
) -> None:
    assert _backend(api, suspended) == "portal-suspended"


def test_the_ingress_asks_for_this_portals_page(
    suspended: RuntimeSpec, api: kube.ApiClient
) -> None:
    annotations = _ingress(api, suspended).metadata.annotations
    assert annotations["nginx.ingress.kubernetes.io/rewrite-target"] == (
        f"/suspended/{suspended.slug}"
    )


def test_the_page_service_names_the_control_plane(
    suspended: RuntimeSpec, api: kube.ApiClient
) -> None:
    service = kube.CoreV1Api(api).read_namespaced_service("portal-suspended", f"t-{suspended.slug}")
    assert (service.spec.type, service.spec.external_name, service.spec.ports[0].port) == (
        "ExternalName",
        "backlot-api.backlot-system.svc.cluster.local",
        8080,
    )


def test_suspending_keeps_the_portals_host_and_certificate(
    suspended: RuntimeSpec, api: kube.ApiClient
) -> None:
    spec = _ingress(api, suspended).spec
    assert (spec.rules[0].host, spec.tls[0].secret_name) == (
        f"{suspended.slug}.portals.example",
        "portal-tls",
    )


def test_suspending_scales_the_portal_to_zero(suspended: RuntimeSpec, api: kube.ApiClient) -> None:
    deployment = kube.AppsV1Api(api).read_namespaced_deployment("portal", f"t-{suspended.slug}")
    assert deployment.spec.replicas == 0


def test_resume_restores_the_portals_backend(
    driver: KubernetesDriver, suspended: RuntimeSpec, api: kube.ApiClient
) -> None:
    driver.resume(suspended, lambda _: None)
    ingress = _ingress(api, suspended)
    assert (
        _backend(api, suspended),
        "nginx.ingress.kubernetes.io/rewrite-target" in (ingress.metadata.annotations or {}),
    ) == ("portal", False)


def test_resume_removes_the_page_service(
    driver: KubernetesDriver, suspended: RuntimeSpec, api: kube.ApiClient
) -> None:
    driver.resume(suspended, lambda _: None)
    with pytest.raises(ApiException) as missing:
        kube.CoreV1Api(api).read_namespaced_service("portal-suspended", f"t-{suspended.slug}")
    assert missing.value.status == 404


def test_a_resumed_portal_shows_no_drift(driver: KubernetesDriver, suspended: RuntimeSpec) -> None:
    driver.resume(suspended, lambda _: None)
    assert driver.observe(suspended).drift == []
