"""The control plane's RBAC on the real cluster: enough to run the driver, nothing more.

The ServiceAccount, ClusterRole and binding from ``rbac.py`` are applied as the cluster's
administrator; every check then runs as that ServiceAccount, with a bearer token minted by
the TokenRequest API, exactly as the control plane's pod would authenticate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest
from kubernetes import client as kube
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.base import ConditionUpdate, RuntimeSpec
from control_plane.provisioning.drivers.kubernetes import rbac
from control_plane.provisioning.drivers.kubernetes.driver import FIELD_MANAGER, KubernetesDriver

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

# Per test process, so parallel runs never share (or delete) each other's identity.
_SUFFIX = os.environ.get("PYTEST_XDIST_WORKER", "main").replace("_", "-").lower()
NAMESPACE = f"backlot-system-{_SUFFIX}"
NAME = f"backlot-control-plane-{_SUFFIX}"
RBAC_PROPAGATION_SECONDS = 30


@dataclass(frozen=True)
class ControlPlaneIdentity:
    admin: kube.ApiClient
    client: kube.ApiClient


def _bearer_client(info: Any, token: str) -> kube.ApiClient:
    """A client that authenticates only with the token: the admin kubeconfig lends its CA."""
    configuration = kube.Configuration()
    configuration.host = info.server
    configuration.ssl_ca_cert = str(info.ca_file)
    configuration.api_key = {"BearerToken": token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return kube.ApiClient(configuration)


def _allowed(client: kube.ApiClient, **attributes: str) -> bool:
    review = kube.AuthorizationV1Api(client).create_self_subject_access_review(
        kube.V1SelfSubjectAccessReview(
            spec=kube.V1SelfSubjectAccessReviewSpec(
                resource_attributes=kube.V1ResourceAttributes(**attributes)
            )
        )
    )
    return bool(review.status.allowed)


def _delete_quietly(delete: Any, *args: Any) -> None:
    try:
        delete(*args)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture(scope="module")
def identity(kube_cluster: Any) -> Iterator[ControlPlaneIdentity]:
    admin = kube_config.new_client_from_config(config_file=str(kube_cluster.kubeconfig))
    dynamic = DynamicClient(admin)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    for manifest in [namespace, *rbac.control_plane_objects(NAMESPACE, NAME)]:
        dynamic.resources.get(
            api_version=manifest["apiVersion"], kind=manifest["kind"]
        ).server_side_apply(body=manifest, field_manager=FIELD_MANAGER, force_conflicts=True)
    token = (
        kube.CoreV1Api(admin)
        .create_namespaced_service_account_token(
            NAME,
            NAMESPACE,
            kube.AuthenticationV1TokenRequest(
                spec=kube.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
            ),
        )
        .status.token
    )
    client = _bearer_client(kube_cluster, token)
    # The authorizer learns of a new binding through its informer: wait, bounded.
    deadline = time.monotonic() + RBAC_PROPAGATION_SECONDS
    while not _allowed(client, verb="create", resource="namespaces"):
        assert time.monotonic() < deadline, "the ClusterRoleBinding never took effect"
        time.sleep(0.2)
    yield ControlPlaneIdentity(admin=admin, client=client)
    rbac_api = kube.RbacAuthorizationV1Api(admin)
    _delete_quietly(rbac_api.delete_cluster_role_binding, NAME)
    _delete_quietly(rbac_api.delete_cluster_role, NAME)
    _delete_quietly(kube.CoreV1Api(admin).delete_namespace, NAMESPACE)


def test_the_token_authenticates_as_the_control_plane_service_account(
    identity: ControlPlaneIdentity,
) -> None:
    review = kube.AuthenticationV1Api(identity.client).create_self_subject_review(
        kube.V1SelfSubjectReview()
    )
    assert review.status.user_info.username == f"system:serviceaccount:{NAMESPACE}:{NAME}"


def test_the_driver_provisions_and_destroys_a_tenant_with_only_these_rights(
    identity: ControlPlaneIdentity, kube_settings: Settings
) -> None:
    driver = KubernetesDriver(kube_settings, client=identity.client)
    tenant_id = str(uuid4())
    spec = RuntimeSpec(tenant_id, f"rbac-{tenant_id[:8]}", "Initech", "0.1.0", "small")
    steps: list[ConditionUpdate] = []
    try:
        observation = driver.ensure(spec, steps.append)
        assert observation.ready
        assert driver.observe(spec).drift == []
        driver.destroy(spec)
    finally:
        # As the administrator: a failure above must not leave the tenant behind.
        admin_driver = KubernetesDriver(kube_settings, client=identity.admin)
        admin_driver.destroy(spec)
        admin_driver.purge(spec)

    with pytest.raises(ApiException) as gone:
        kube.CoreV1Api(identity.admin).read_namespace(f"t-{spec.slug}")
    assert gone.value.status == 404


@pytest.mark.parametrize(
    ("description", "attempt"),
    [
        ("list nodes", lambda c: kube.CoreV1Api(c).list_node()),
        (
            "create a ClusterRoleBinding to cluster-admin",
            lambda c: kube.RbacAuthorizationV1Api(c).create_cluster_role_binding(
                {
                    "metadata": {"name": f"{NAME}-escalated"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
                }
            ),
        ),
        (
            "create a RoleBinding in its own namespace",
            lambda c: kube.RbacAuthorizationV1Api(c).create_namespaced_role_binding(
                NAMESPACE,
                {
                    "metadata": {"name": "escalated"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "admin",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
                },
            ),
        ),
        (
            "mint a token for another ServiceAccount",
            lambda c: kube.CoreV1Api(c).create_namespaced_service_account_token(
                "default",
                "kube-system",
                kube.AuthenticationV1TokenRequest(spec=kube.V1TokenRequestSpec(audiences=[])),
            ),
        ),
        (
            "create a pod directly",
            lambda c: kube.CoreV1Api(c).create_namespaced_pod(
                NAMESPACE,
                {
                    "metadata": {"name": "intruder"},
                    "spec": {"containers": [{"name": "x", "image": "busybox"}]},
                },
            ),
        ),
        (
            "list CustomResourceDefinitions",
            lambda c: kube.ApiextensionsV1Api(c).list_custom_resource_definition(),
        ),
    ],
)
def test_the_control_plane_is_refused_what_the_driver_never_does(
    identity: ControlPlaneIdentity, description: str, attempt: Any
) -> None:
    with pytest.raises(ApiException) as refused:
        attempt(identity.client)
    assert refused.value.status == 403, description


@pytest.mark.parametrize(
    "attributes",
    [
        {"verb": "get", "resource": "nodes"},
        {"verb": "update", "resource": "namespaces"},
        {"verb": "deletecollection", "resource": "secrets", "namespace": "kube-system"},
        {"verb": "create", "resource": "pods", "subresource": "exec", "namespace": "kube-system"},
        {"verb": "get", "resource": "pods", "subresource": "log", "namespace": "kube-system"},
        {"verb": "escalate", "resource": "clusterroles", "group": "rbac.authorization.k8s.io"},
        {"verb": "bind", "resource": "clusterroles", "group": "rbac.authorization.k8s.io"},
        {"verb": "impersonate", "resource": "users"},
        {"verb": "create", "resource": "persistentvolumes"},
        {
            "verb": "create",
            "resource": "validatingadmissionpolicies",
            "group": "admissionregistration.k8s.io",
        },
    ],
)
def test_access_reviews_deny_what_the_role_leaves_out(
    identity: ControlPlaneIdentity, attributes: dict[str, str]
) -> None:
    assert _allowed(identity.client, **attributes) is False


def test_known_limit_it_can_read_secrets_in_every_namespace(
    identity: ControlPlaneIdentity,
) -> None:
    """A ClusterRole cannot be scoped to tenant namespaces: see rbac.py's docstring.

    This test documents the limit; it fails the day the role stops granting it (then
    update rbac.py's docstring too).
    """
    found = kube.CoreV1Api(identity.client).list_namespaced_secret("kube-system")
    assert found.items is not None
    assert _allowed(identity.client, verb="get", resource="secrets", namespace="kube-system")


def test_the_role_grants_nothing_in_the_rbac_api_group() -> None:
    groups = {group for rule in rbac.cluster_role()["rules"] for group in rule["apiGroups"]}
    assert groups == {"", "apps", "networking.k8s.io", "policy"}
    verbs = {verb for rule in rbac.cluster_role()["rules"] for verb in rule["verbs"]}
    assert verbs.isdisjoint({"*", "bind", "escalate", "impersonate", "update"})
