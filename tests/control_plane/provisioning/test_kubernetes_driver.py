"""The Kubernetes driver against a real kube-apiserver (with admission, RBAC and kwok nodes)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.base import ConditionUpdate, DriverError, RuntimeSpec
from control_plane.provisioning.drivers.kubernetes.driver import FIELD_MANAGER, KubernetesDriver
from control_plane.provisioning.models import Operation
from control_plane.provisioning.reconciler import Reconciler
from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from tests.control_plane.factories import KWOK_TOLERATION, make_tenant, pending_operation

pytestmark = [pytest.mark.k8s, pytest.mark.integration]


@pytest.fixture
def driver(kube_settings: Settings) -> Iterator[KubernetesDriver]:
    made = KubernetesDriver(kube_settings)
    created: list[RuntimeSpec] = []
    original = made.ensure

    def tracking(spec: RuntimeSpec, progress: Any) -> Any:
        created.append(spec)
        return original(spec, progress)

    made.ensure = tracking  # type: ignore[method-assign]
    yield made
    for spec in created:
        made.destroy(spec)
        made.purge(spec)


def _spec(tier: str = "small") -> RuntimeSpec:
    tenant_id = str(uuid4())
    return RuntimeSpec(tenant_id, f"k8s-{tenant_id[:8]}", "Initech", "0.1.0", tier)


def test_ensure_builds_a_hardened_namespace_with_a_ready_portal(
    driver: KubernetesDriver, api: kube.ApiClient
) -> None:
    spec = _spec()
    steps: list[ConditionUpdate] = []
    observation = driver.ensure(spec, steps.append)

    assert observation.ready
    assert observation.url == f"https://{spec.slug}.portals.example"
    assert [(s.type, s.status) for s in steps] == [
        ("DatabaseReady", True),
        ("WorkloadReady", False),
        ("WorkloadReady", True),
    ]
    core, apps = kube.CoreV1Api(api), kube.AppsV1Api(api)
    namespace = core.read_namespace(f"t-{spec.slug}")
    assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace.metadata.labels["backlot.dev/tenant-id"] == spec.tenant_id
    assert (
        core.read_namespaced_service_account(
            "portal", f"t-{spec.slug}"
        ).automount_service_account_token
        is False
    )
    deployment = apps.read_namespaced_deployment("portal", f"t-{spec.slug}")
    assert deployment.status.ready_replicas == 1
    managers = {(f.manager, f.operation) for f in deployment.metadata.managed_fields}
    assert (FIELD_MANAGER, "Apply") in managers
    policies = kube.NetworkingV1Api(api).list_namespaced_network_policy(f"t-{spec.slug}")
    assert sorted(p.metadata.name for p in policies.items) == [
        "allow-dns",
        "allow-egress-database-and-control-plane",
        "allow-ingress-controller",
        "default-deny",
    ]
    secret = core.read_namespaced_secret("portal-credentials", f"t-{spec.slug}")
    database_url = make_url(base64.b64decode(secret.data["database-url"]).decode())
    assert database_url.database == observation.names["database"]
    assert observation.names["namespace"] == f"t-{spec.slug}"


def test_the_cluster_refuses_a_pod_that_breaks_the_restricted_standard(
    driver: KubernetesDriver, api: kube.ApiClient
) -> None:
    spec = _spec()
    driver.ensure(spec, lambda _: None)
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "intruder"},
        "spec": {
            "tolerations": KWOK_TOLERATION,
            "containers": [
                {"name": "x", "image": "busybox", "securityContext": {"privileged": True}}
            ],
        },
    }
    with pytest.raises(ApiException) as refused:
        kube.CoreV1Api(api).create_namespaced_pod(f"t-{spec.slug}", privileged)
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:v1.34"' in json.loads(refused.value.body)["message"]


def test_ensure_again_changes_nothing_and_keeps_the_credentials(
    driver: KubernetesDriver, api: kube.ApiClient
) -> None:
    spec = _spec()
    driver.ensure(spec, lambda _: None)
    core, apps = kube.CoreV1Api(api), kube.AppsV1Api(api)
    before = apps.read_namespaced_deployment("portal", f"t-{spec.slug}").metadata.resource_version
    secret_before = core.read_namespaced_secret("portal-credentials", f"t-{spec.slug}").data

    driver.ensure(spec, lambda _: None)

    assert (
        apps.read_namespaced_deployment("portal", f"t-{spec.slug}").metadata.resource_version
        == before
    )
    assert core.read_namespaced_secret("portal-credentials", f"t-{spec.slug}").data == secret_before


def test_ensure_repairs_objects_someone_deleted(
    driver: KubernetesDriver, api: kube.ApiClient
) -> None:
    spec = _spec()
    driver.ensure(spec, lambda _: None)
    networking = kube.NetworkingV1Api(api)
    networking.delete_namespaced_network_policy("default-deny", f"t-{spec.slug}")
    assert driver.observe(spec).workload_ready is True

    driver.ensure(spec, lambda _: None)

    assert (
        networking.read_namespaced_network_policy(
            "default-deny", f"t-{spec.slug}"
        ).spec.pod_selector
        == kube.V1LabelSelector()
    )


def test_suspend_scales_to_zero_keeps_the_data_and_resume_brings_it_back(
    driver: KubernetesDriver, api: kube.ApiClient
) -> None:
    spec = _spec()
    driver.ensure(spec, lambda _: None)

    driver.suspend(spec)

    deployment = kube.AppsV1Api(api).read_namespaced_deployment("portal", f"t-{spec.slug}")
    assert deployment.spec.replicas == 0
    observed = driver.observe(spec)
    assert (observed.workload_ready, observed.database_ready) == (False, True)
    assert driver.resume(spec, lambda _: None).ready


def test_destroy_removes_the_namespace_and_purge_the_database(
    driver: KubernetesDriver, api: kube.ApiClient
) -> None:
    spec = _spec()
    driver.ensure(spec, lambda _: None)

    driver.destroy(spec)

    with pytest.raises(ApiException) as gone:
        kube.CoreV1Api(api).read_namespace(f"t-{spec.slug}")
    assert gone.value.status == 404
    assert driver.databases.exists(spec.tenant_id) is True
    driver.purge(spec)
    assert driver.databases.exists(spec.tenant_id) is False
    driver.destroy(spec)
    driver.purge(spec)


def test_an_unknown_size_tier_fails_with_a_reason(driver: KubernetesDriver) -> None:
    with pytest.raises(DriverError) as failed:
        driver.ensure(_spec(tier="gigantic"), lambda _: None)
    assert (failed.value.reason, failed.value.message) == (
        "UnknownSizeTier",
        "no size tier named 'gigantic'",
    )


def test_the_reconciler_brings_a_tenant_live_on_kubernetes(
    kube_settings: Settings,
    sessions: sessionmaker[Session],
    db_session: Session,
    driver: KubernetesDriver,
) -> None:
    _, _, tenant = make_tenant(db_session)
    operation = db_session.scalars(select(Operation).where(Operation.tenant_id == tenant.id)).one()
    db_session.commit()

    outcome = Reconciler(kube_settings, sessions, driver).run(operation.id)

    assert outcome.status == "ready"
    db_session.expire_all()
    fresh = db_session.get(Tenant, tenant.id)
    assert fresh is not None
    assert (fresh.state, fresh.runtime_url) == (
        TenantState.ACTIVE,
        f"https://{tenant.slug}.portals.example",
    )
    assert fresh.runtime_names["namespace"] == f"t-{tenant.slug}"


def test_deleting_a_tenant_on_kubernetes_goes_in_order_and_purges_after_retention(
    kube_settings: Settings,
    sessions: sessionmaker[Session],
    db_session: Session,
    driver: KubernetesDriver,
    api: kube.ApiClient,
) -> None:
    reconciler = Reconciler(kube_settings, sessions, driver)
    _, _, tenant = make_tenant(db_session)
    operation = db_session.scalars(select(Operation).where(Operation.tenant_id == tenant.id)).one()
    db_session.commit()
    assert reconciler.run(operation.id).status == "ready"
    db_session.refresh(tenant)

    deletion = tenants.request_deletion(db_session, tenant, actor="user:owner@example.com")
    db_session.commit()
    assert reconciler.run(deletion.id).status == "deleted"

    with pytest.raises(ApiException) as gone:
        kube.CoreV1Api(api).read_namespace(f"t-{tenant.slug}")
    assert gone.value.status == 404
    assert driver.databases.exists(str(tenant.id)), "the data outlives the namespace"

    db_session.refresh(tenant)
    tenant.purge_after = tenants.now() - dt.timedelta(seconds=1)
    db_session.commit()
    assert reconciler.resync() == [tenant.id]
    purge = pending_operation(db_session, tenant.id)
    assert reconciler.run(purge.id).status == "purged"
    assert driver.databases.exists(str(tenant.id)) is False


def test_an_unchanged_tenant_shows_no_drift(driver: KubernetesDriver) -> None:
    spec = _spec()
    driver.ensure(spec, lambda _: None)
    assert driver.observe(spec).drift == []


def test_drift_is_seen_and_repaired_and_unwanted_objects_are_pruned(
    driver: KubernetesDriver, api: kube.ApiClient
) -> None:
    spec = _spec()
    driver.ensure(spec, lambda _: None)
    namespace = f"t-{spec.slug}"
    kube.NetworkingV1Api(api).delete_namespaced_network_policy("allow-dns", namespace)
    kube.AppsV1Api(api).patch_namespaced_deployment(
        "portal",
        namespace,
        {"spec": {"template": {"spec": {"automountServiceAccountToken": True}}}},
    )
    kube.CoreV1Api(api).create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "leftover",
                "labels": {"backlot.dev/tenant-id": spec.tenant_id},
            }
        },
    )

    assert driver.observe(spec).drift == [
        "ConfigMap/leftover not wanted",
        "Deployment/portal edited",
        "NetworkPolicy/allow-dns missing",
    ]

    driver.ensure(spec, lambda _: None)

    assert driver.observe(spec).drift == []
    pod = kube.AppsV1Api(api).read_namespaced_deployment("portal", namespace).spec.template.spec
    assert pod.automount_service_account_token is False


def test_a_deployment_deleted_by_hand_is_restored_by_the_resync(
    kube_settings: Settings,
    sessions: sessionmaker[Session],
    db_session: Session,
    driver: KubernetesDriver,
    api: kube.ApiClient,
) -> None:
    reconciler = Reconciler(kube_settings, sessions, driver)
    _, _, tenant = make_tenant(db_session)
    operation = db_session.scalars(select(Operation).where(Operation.tenant_id == tenant.id)).one()
    db_session.commit()
    assert reconciler.run(operation.id).status == "ready"
    assert reconciler.resync() == [], "a healthy tenant needs nothing"

    kube.AppsV1Api(api).delete_namespaced_deployment("portal", f"t-{tenant.slug}")

    assert reconciler.resync() == [tenant.id]
    repair = pending_operation(db_session, tenant.id)
    assert reconciler.run(repair.id).status == "ready"
    deployment = kube.AppsV1Api(api).read_namespaced_deployment("portal", f"t-{tenant.slug}")
    assert deployment.status.ready_replicas == 1
    assert reconciler.resync() == []


def test_pods_that_cannot_be_scheduled_fail_the_tenant_with_the_schedulers_reason(
    kube_settings: Settings,
) -> None:
    nowhere = kube_settings.model_copy(
        update={
            "kube_node_selector": json.dumps({"type": "no-such-pool"}),
            "runtime_start_timeout_seconds": 4,
        }
    )
    driver = KubernetesDriver(nowhere)
    spec = _spec()
    try:
        with pytest.raises(DriverError) as failed:
            driver.ensure(spec, lambda _: None)
    finally:
        driver.destroy(spec)
        driver.purge(spec)
    assert failed.value.reason == "RuntimeUnhealthy"
    assert "PodScheduled is False (0/2 nodes are available" in failed.value.message
