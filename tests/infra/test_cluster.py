"""The Kubernetes test cluster that infra/cluster/cluster.py starts behaves like a real one.

The tests drive it with the kubectl built next to the control plane (the `kubernetes` Python
package is not a dependency of the project).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.cluster import cluster

pytestmark = pytest.mark.k8s

HOW_TO_START = (
    "build it with `bash infra/cluster/build.sh`, then start it with "
    "`uv run python -m infra.cluster.cluster up`"
)
READY_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def info() -> cluster.ClusterInfo:
    try:
        return cluster.ensure_cluster()
    except cluster.ClusterUnavailable as exc:
        pytest.fail(f"the Kubernetes test cluster is needed: {exc}\n{HOW_TO_START}", pytrace=False)


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def kubectl(info: cluster.ClusterInfo) -> Kubectl:
    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(info.kubectl), f"--kubeconfig={info.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{' '.join(result.args)} failed:\n{result.stderr}"
    return result.stdout


def _apply(
    kubectl: Kubectl, manifest: dict[str, Any], namespace: str = "default"
) -> subprocess.CompletedProcess[str]:
    return kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(manifest))


def _new_namespace(kubectl: Kubectl, labels: dict[str, str] | None = None) -> str:
    name = f"backlot-test-{uuid.uuid4().hex[:8]}"
    metadata: dict[str, Any] = {"name": name, "labels": labels or {}}
    _ok(_apply(kubectl, {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}))
    return name


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    name = _new_namespace(kubectl)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
def restricted_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = _new_namespace(kubectl, {"pod-security.kubernetes.io/enforce": "restricted"})
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


RESTRICTED_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "tolerations": [cluster.KWOK_TOLERATION],
                    "nodeSelector": cluster.KWOK_NODE_SELECTOR,
                    "containers": [
                        {
                            "name": "web",
                            "image": "registry.invalid/backlot/web:1",
                            "securityContext": RESTRICTED_SECURITY_CONTEXT,
                        }
                    ],
                },
            },
        },
    }


def _ready_pods(kubectl: Kubectl, namespace: str, app: str) -> list[str]:
    pods = json.loads(_ok(kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o=json")))
    return [
        pod["metadata"]["name"]
        for pod in pods["items"]
        if pod["status"].get("phase") == "Running"
        and any(
            condition["type"] == "Ready" and condition["status"] == "True"
            for condition in pod["status"].get("conditions", [])
        )
    ]


def _wait_for_ready_pods(kubectl: Kubectl, namespace: str, app: str, count: int) -> float:
    """Seconds until `count` pods of `app` are Running and Ready; fails with the state seen."""
    started = time.monotonic()
    while len(_ready_pods(kubectl, namespace, app)) < count:
        if time.monotonic() - started > READY_TIMEOUT:
            state = kubectl("get", "deployments,replicasets,pods,events", "-n", namespace)
            pytest.fail(
                f"no {count} Running+Ready pods of {app} within {READY_TIMEOUT:.0f}s:\n"
                f"{state.stdout}{state.stderr}"
            )
        time.sleep(0.5)
    return time.monotonic() - started


def test_restricted_namespace_rejects_a_privileged_pod(
    kubectl: Kubectl, restricted_namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root-shell"},
        "spec": {
            "tolerations": [cluster.KWOK_TOLERATION],
            "containers": [
                {
                    "name": "shell",
                    "image": "registry.invalid/busybox:1",
                    "securityContext": {"privileged": True},
                }
            ],
        },
    }

    result = _apply(kubectl, pod, restricted_namespace)

    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest": privileged' in result.stderr


def test_service_account_without_a_role_cannot_list_pods(
    kubectl: Kubectl, info: cluster.ClusterInfo, namespace: str
) -> None:
    _ok(kubectl("create", "serviceaccount", "nobody", "-n", namespace))
    token = _ok(kubectl("create", "token", "nobody", "-n", namespace)).strip()

    # A client that holds only the token: the admin kubeconfig's client certificate would
    # authenticate first.
    result = subprocess.run(
        [
            str(info.kubectl),
            "--kubeconfig=/dev/null",
            f"--server={info.server}",
            f"--certificate-authority={info.ca_file}",
            f"--token={token}",
            "get",
            "pods",
            "-n",
            namespace,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert (
        f'User "system:serviceaccount:{namespace}:nobody" cannot list resource "pods"'
        in result.stderr
    )


def test_deployment_gets_a_running_ready_pod_on_a_fake_node(
    kubectl: Kubectl, restricted_namespace: str
) -> None:
    _ok(_apply(kubectl, _deployment("web"), restricted_namespace))

    took = _wait_for_ready_pods(kubectl, restricted_namespace, "web", count=1)

    print(f"pod Running and Ready {took:.1f}s after the Deployment was created")


def test_deleting_a_namespace_completes(kubectl: Kubectl) -> None:
    namespace = _new_namespace(kubectl)
    _ok(_apply(kubectl, _deployment("web", replicas=2), namespace))
    _ok(kubectl("create", "configmap", "settings", "-n", namespace, "--from-literal=a=b"))
    _wait_for_ready_pods(kubectl, namespace, "web", count=2)

    _ok(kubectl("delete", "namespace", namespace, "--wait=false"))
    started = time.monotonic()
    while _ok(kubectl("get", "namespace", namespace, "--ignore-not-found", "-o=name")):
        if time.monotonic() - started > READY_TIMEOUT:
            state = kubectl("get", "namespace", namespace, "-o=yaml")
            pytest.fail(f"namespace {namespace} still exists after 60s:\n{state.stdout}")
        time.sleep(0.5)

    print(f"namespace deleted {time.monotonic() - started:.1f}s after the request")
