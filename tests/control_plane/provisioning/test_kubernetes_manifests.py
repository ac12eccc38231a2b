"""What each tenant namespace holds, read from the manifests the driver applies."""

from __future__ import annotations

from typing import Any

import pytest

from control_plane.provisioning.drivers.base import RuntimeSpec
from control_plane.provisioning.drivers.kubernetes import manifests
from control_plane.provisioning.drivers.kubernetes.manifests import ClusterConfig, TenantNames

pytestmark = pytest.mark.k8s

SPEC = RuntimeSpec("0b6f1f7e-4a4e-4f3e-9d59-0c2b4f0d6a11", "initech", "Initech", "0.3.1", "small")
CONFIG = ClusterConfig(
    image="registry.example/backlot/tenant-runtime",
    base_domain="portals.example",
    control_plane_url="https://app.backlot.example",
    database_cidr="0.0.0.0/0",
)
NAMES = TenantNames.for_tenant(SPEC)


def _objects() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (m["kind"], m["metadata"]["name"]): m
        for m in manifests.tenant_objects(SPEC, NAMES, CONFIG, {"database-url": "postgresql://x"})
    }


def test_every_object_is_labelled_with_the_tenant_and_lives_in_its_namespace() -> None:
    objects = _objects()
    assert len(objects) == 14
    for (kind, name), manifest in objects.items():
        labels = manifest["metadata"]["labels"]
        assert labels[manifests.TENANT_LABEL] == SPEC.tenant_id, (kind, name)
        assert labels["app.kubernetes.io/managed-by"] == "backlot-control-plane", (kind, name)
    namespaces = {m["metadata"].get("namespace") for m in objects.values()}
    assert namespaces == {None, "t-initech"}
    assert [k for k, m in objects.items() if "namespace" not in m["metadata"]] == [
        ("Namespace", "t-initech")
    ]


def test_the_namespace_enforces_the_restricted_pod_security_standard() -> None:
    labels = _objects()[("Namespace", "t-initech")]["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.34"


def test_the_runtime_gets_no_service_account_token() -> None:
    objects = _objects()
    assert objects[("ServiceAccount", "portal")]["automountServiceAccountToken"] is False
    pod = objects[("Deployment", "portal")]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "portal"


def test_every_container_is_locked_down_and_pinned_to_the_release() -> None:
    pod = _objects()[("Deployment", "portal")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    containers = [*pod["initContainers"], *pod["containers"]]
    assert [c["name"] for c in containers] == ["migrate", "portal"]
    for container in containers:
        assert container["image"] == "registry.example/backlot/tenant-runtime:0.3.1"
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    portal = pod["containers"][0]
    assert portal["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert portal["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_network_policies_deny_by_default_and_block_the_metadata_address() -> None:
    objects = _objects()
    deny = objects[("NetworkPolicy", "default-deny")]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ingress = objects[("NetworkPolicy", "allow-ingress-controller")]["spec"]["ingress"]
    assert ingress[0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    egress = objects[("NetworkPolicy", "allow-egress-database-and-control-plane")]["spec"]["egress"]
    assert egress[0]["to"][0]["ipBlock"] == {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}


def test_a_database_range_without_the_metadata_address_needs_no_exception() -> None:
    config = ClusterConfig(
        image="i", base_domain="d", control_plane_url="u", database_cidr="10.0.0.0/8"
    )
    policies = manifests.network_policies(SPEC, NAMES, config)
    egress = policies[-1]["spec"]["egress"][0]
    assert egress["to"][0]["ipBlock"] == {"cidr": "10.0.0.0/8"}


def test_the_ingress_serves_the_tenant_host_with_tls() -> None:
    ingress = _objects()[("Ingress", "portal")]
    assert ingress["spec"]["rules"][0]["host"] == "initech.portals.example"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["initech.portals.example"], "secretName": "portal-tls"}
    ]


@pytest.mark.parametrize(
    ("tier", "replicas", "budget"),
    [
        ("small", 1, {"maxUnavailable": 1}),
        ("medium", 2, {"minAvailable": 1}),
        ("large", 3, {"minAvailable": 2}),
    ],
)
def test_size_tiers_set_replicas_and_a_disruption_budget_that_allows_drains(
    tier: str, replicas: int, budget: dict[str, int]
) -> None:
    spec = RuntimeSpec(
        SPEC.tenant_id, SPEC.slug, SPEC.organization_name, SPEC.runtime_release, tier
    )
    assert manifests.deployment(spec, NAMES, CONFIG)["spec"]["replicas"] == replicas
    pdb = manifests.disruption_budget(spec, NAMES)["spec"]
    assert {k: v for k, v in pdb.items() if k != "selector"} == budget


def test_suspending_scales_to_zero_and_changes_nothing_else() -> None:
    running = manifests.deployment(SPEC, NAMES, CONFIG)
    suspended = manifests.deployment(SPEC, NAMES, CONFIG, replicas=0)
    assert suspended["spec"].pop("replicas") == 0
    running["spec"].pop("replicas")
    assert suspended == running


def test_stored_names_are_reused_not_derived_again() -> None:
    stored = {"namespace": "tenant-legacy-7", "deployment": "portal", "database": "tenant_x"}
    spec = RuntimeSpec(SPEC.tenant_id, "renamed-slug", "Initech", "0.3.1", "small", names=stored)
    names = TenantNames.for_tenant(spec)
    assert names.namespace == "tenant-legacy-7"
    assert TenantNames.for_tenant(SPEC).namespace == "t-initech"


def test_the_runtime_reaches_the_control_plane_with_its_token_from_the_secret() -> None:
    objects = manifests.tenant_objects(
        SPEC, NAMES, CONFIG, {"database-url": "postgresql://x", "control-plane-token": "t0ken"}
    )
    by_kind = {m["kind"]: m for m in objects}
    assert by_kind["Secret"]["stringData"]["control-plane-token"] == "t0ken"
    assert by_kind["ConfigMap"]["data"]["BACKLOT_RUNTIME_CONTROL_PLANE_URL"] == (
        CONFIG.control_plane_url
    )
    container = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    token_env = next(
        e for e in container["env"] if e["name"] == "BACKLOT_RUNTIME_CONTROL_PLANE_TOKEN"
    )
    assert token_env["valueFrom"]["secretKeyRef"] == {
        "name": NAMES.secret,
        "key": "control-plane-token",
    }
