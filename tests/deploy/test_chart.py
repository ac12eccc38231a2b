"""The Helm chart that deploys the control plane (helm/backlot).

Offline checks render the chart with the pinned Helm binary and hold every manifest (hooks
included) against Kubernetes 1.34's OpenAPI schemas (kubernetes-validate) and checkov's
Kubernetes policies; the install test puts the chart on the real test cluster, in a
namespace that enforces the `restricted` Pod Security Standard, and waits for the migrations
hook Job and every Deployment.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import kubernetes_validate
import pytest
import yaml
from kubernetes import client as kube
from kubernetes import config as kube_config
from kubernetes import watch as kube_watch
from kubernetes.client.exceptions import ApiException

from control_plane.provisioning.drivers.kubernetes import rbac

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "backlot"
VALUES = Path(__file__).with_name("values")
PRODUCTION_VALUES = VALUES / "production.yaml"
KWOK_VALUES = VALUES / "kwok.yaml"
BUILD_SCRIPT = ROOT / "infra" / "deploy" / "build-helm.sh"
KUBERNETES_VERSION = "1.34.0"
CHECKOV_VERSION = "3.1.47"
BUILD_HINT = "run `make helm-build` (infra/deploy/build-helm.sh)"

# What the chart must always render; a template that silently renders nothing fails here.
DEFAULT_KINDS = {
    "ConfigMap",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Service",
    "Deployment",
    "Job",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
}
PRODUCTION_KINDS = DEFAULT_KINDS | {"Ingress", "ExternalSecret"}
# Custom resources: kubernetes-validate ships only the built-in kinds' schemas.
CUSTOM_KINDS = {"ExternalSecret"}

# checkov findings the chart accepts, as (check id, resource glob) -> why. Everything else fails.
CHECKOV_ACCEPTED = {
    ("CKV_K8S_35", "*"): (
        "secrets reach the processes as env vars from secretKeyRef: the settings are read "
        "from BACKLOT_* variables only (pydantic-settings has no secrets_dir configured)"
    ),
    ("CKV_K8S_38", "Deployment.*-worker"): (
        "the workers run the kubernetes driver and need their ServiceAccount token; every "
        "other pod sets automountServiceAccountToken: false"
    ),
}


def _helm_version() -> str:
    match = re.search(r"^HELM_VERSION=(v3\.\d+\.\d+)", BUILD_SCRIPT.read_text(), re.MULTILINE)
    assert match, f"no HELM_VERSION=v3.x.y line in {BUILD_SCRIPT}"
    return match.group(1)


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned Helm binary; the tests never build it."""
    cache = Path(os.environ.get("BACKLOT_CACHE_DIR") or Path.home() / ".cache" / "backlot")
    binary = cache.expanduser() / "deploy" / "bin" / f"helm-{_helm_version()}"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"Helm is missing at {binary}: {BUILD_HINT}", pytrace=False)
    return binary


def _run(argv: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, check=False, **kwargs
    )


def _render(helm: Path, *args: str | Path, namespace: str = "backlot") -> list[dict[str, Any]]:
    result = _run([helm, "template", "backlot", CHART, "--namespace", namespace, *args])
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _values_args(name: str) -> list[str | Path]:
    return [] if name == "default" else ["--values", VALUES / f"{name}.yaml"]


def _by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def _pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (obj["metadata"]["name"], obj["spec"]["template"]["spec"])
        for obj in objects
        if obj["kind"] in {"Deployment", "Job"}
    ]


@pytest.mark.parametrize("values", ["default", "production"])
def test_chart_lints_strictly(helm: Path, values: str) -> None:
    result = _run([helm, "lint", "--strict", CHART, *_values_args(values)])

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "kinds"), [("default", DEFAULT_KINDS), ("production", PRODUCTION_KINDS)]
)
def test_every_rendered_manifest_is_valid_kubernetes_1_34(
    helm: Path, values: str, kinds: set[str]
) -> None:
    objects = _render(helm, *_values_args(values))
    problems = []
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(part) for part in error.path)
            problems.append(f"{obj['kind']}/{obj['metadata']['name']} at {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{obj['kind']} ({obj['apiVersion']}) is not a Kubernetes 1.34 kind")

    assert problems == []
    assert {obj["kind"] for obj in objects} == kinds


def test_the_external_secret_fills_the_referenced_secret(helm: Path) -> None:
    # No offline schema exists for this CRD; its shape is checked here instead.
    objects = _render(helm, "--values", PRODUCTION_VALUES)
    (external,) = _by_kind(objects, "ExternalSecret")
    production = yaml.safe_load(PRODUCTION_VALUES.read_text())

    assert external["apiVersion"] == "external-secrets.io/v1"
    assert external["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert external["spec"]["secretStoreRef"] == {"name": "vault", "kind": "ClusterSecretStore"}
    assert external["spec"]["target"] == {"name": "backlot-secrets", "creationPolicy": "Orphan"}
    assert {item["secretKey"]: item["remoteRef"] for item in external["spec"]["data"]} == {
        "database-url": production["externalSecrets"]["remoteRefs"]["databaseUrl"],
        "broker-url": production["externalSecrets"]["remoteRefs"]["brokerUrl"],
        "secret-key": production["externalSecrets"]["remoteRefs"]["secretKey"],
        "tenant-database-admin-url": production["externalSecrets"]["remoteRefs"][
            "tenantDatabaseAdminUrl"
        ],
    }


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("beat.replicas=2", "at '/beat/replicas': value must be 1"),
        ("surprise=1", "additional properties 'surprise' not allowed"),
        ("image.tag=latest", "at '/image/tag'"),
    ],
)
def test_the_values_schema_refuses_bad_values(helm: Path, override: str, message: str) -> None:
    result = _run([helm, "template", "backlot", CHART, "--set", override])

    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr


def test_the_migrations_run_as_a_hook_job(helm: Path) -> None:
    (job,) = _by_kind(_render(helm), "Job")
    annotations = job["metadata"]["annotations"]
    container = job["spec"]["template"]["spec"]["containers"][0]

    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert job["spec"]["backoffLimit"] == 3
    assert container["command"] == ["backlot", "migrate"]


def test_beat_is_a_single_replica_recreated_on_rollout(helm: Path) -> None:
    (beat,) = [
        d for d in _by_kind(_render(helm), "Deployment") if d["metadata"]["name"].endswith("-beat")
    ]

    assert (beat["spec"]["replicas"], beat["spec"]["strategy"]) == (1, {"type": "Recreate"})


def test_settings_come_from_the_config_map_and_secret_references_only(helm: Path) -> None:
    objects = _render(helm, "--values", PRODUCTION_VALUES)
    (config,) = _by_kind(objects, "ConfigMap")
    secret_refs = {
        (env["name"], env["valueFrom"]["secretKeyRef"]["key"])
        for _, spec in _pod_specs(objects)
        for env in spec["containers"][0]["env"]
        if "secretKeyRef" in env.get("valueFrom", {})
    }

    assert _by_kind(objects, "Secret") == []
    assert config["data"]["BACKLOT_ENV"] == "production"
    assert config["data"]["BACKLOT_RUNTIME_DRIVER"] == "kubernetes"
    assert config["data"]["BACKLOT_KUBE_TOLERATIONS"] == json.dumps(
        [{"effect": "NoSchedule", "key": "backlot.dev/tenants", "operator": "Exists"}],
        separators=(",", ":"),
    )
    assert secret_refs == {
        ("BACKLOT_DATABASE_URL", "database-url"),
        ("BACKLOT_BROKER_URL", "broker-url"),
        ("BACKLOT_SECRET_KEY", "secret-key"),
        ("BACKLOT_TENANT_DATABASE_ADMIN_URL", "tenant-database-admin-url"),
    }


def test_every_pod_meets_the_restricted_pod_security_standard(helm: Path) -> None:
    failures = []
    for name, spec in _pod_specs(_render(helm)):
        pod, container = spec["securityContext"], spec["containers"][0]["securityContext"]
        mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        if not (
            pod["runAsNonRoot"]
            and pod["seccompProfile"] == {"type": "RuntimeDefault"}
            and container["allowPrivilegeEscalation"] is False
            and container["capabilities"] == {"drop": ["ALL"]}
            and container["readOnlyRootFilesystem"] is True
            and {"/tmp", "/var/lib/backlot"} <= mounts
        ):
            failures.append(name)

    assert failures == []


def test_the_cluster_role_grants_exactly_the_drivers_rules(helm: Path) -> None:
    (role,) = _by_kind(_render(helm), "ClusterRole")

    assert role["rules"] == rbac.RULES


def test_only_the_workers_mount_a_service_account_token(helm: Path) -> None:
    mounting = {
        name for name, spec in _pod_specs(_render(helm)) if spec["automountServiceAccountToken"]
    }

    assert mounting == {"backlot-worker"}


def _checkov(manifests: Path) -> subprocess.CompletedProcess[str]:
    # checkov runs in its own tool environment (uv caches it): it cannot share the project's
    # venv, where python-hcl2 and checkov's bc-python-hcl2 both install a package `hcl2`.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_GITHUB_CONFIG_FETCH_DATA": "False"}
    return _run(
        [
            "uv", "tool", "run", "--python", "3.11", "--from", f"checkov=={CHECKOV_VERSION}",
            "checkov", "-f", manifests, "--framework", "kubernetes", "--quiet", "--compact",
            "--skip-download", "--output", "json",
        ],
        env=env,
        timeout=600,
    )  # fmt: skip


def test_checkov_finds_nothing_beyond_the_accepted_list(helm: Path, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    result = _run(
        [helm, "template", "backlot", CHART, "--namespace", "backlot",
         "--values", PRODUCTION_VALUES]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rendered.write_text(result.stdout)

    scan = _checkov(rendered)
    assert scan.stdout.strip(), scan.stderr
    report = json.loads(scan.stdout)
    failed = {(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]}
    accepted = {
        (check, pattern)
        for check, resource in failed
        for known, pattern in CHECKOV_ACCEPTED
        if check == known and fnmatch.fnmatch(resource, pattern)
    }
    unexpected = {
        (check, resource)
        for check, resource in failed
        if not any(
            check == known and fnmatch.fnmatch(resource, pattern)
            for known, pattern in CHECKOV_ACCEPTED
        )
    }

    assert report["summary"]["passed"] > 0
    assert unexpected == set()
    # An entry nothing matches any more is stale: drop it from the list.
    assert accepted == set(CHECKOV_ACCEPTED)


# --- on the real test cluster --------------------------------------------------------------


@pytest.fixture
def release_namespace(kube_cluster: Any) -> Iterator[tuple[str, kube.ApiClient]]:
    """A fresh namespace enforcing `restricted`, holding the Secret the chart refers to."""
    api_client = kube_config.new_client_from_config(config_file=str(kube_cluster.kubeconfig))
    core = kube.CoreV1Api(api_client)
    name = f"backlot-chart-{uuid4().hex[:8]}"
    pod_security = {
        f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")
    }
    core.create_namespace(
        kube.V1Namespace(metadata=kube.V1ObjectMeta(name=name, labels=pod_security))
    )
    core.create_namespaced_secret(
        name,
        kube.V1Secret(
            metadata=kube.V1ObjectMeta(name="backlot-secrets"),
            string_data={
                "database-url": "postgresql+psycopg://backlot:pw@db.internal:5432/backlot",
                "broker-url": "redis://redis.internal:6379/0",
                "secret-key": "a-test-secret-key-that-is-long-enough",
                "tenant-database-admin-url": "postgresql+psycopg://admin:pw@db.internal:5432/postgres",
            },
        ),
    )
    yield name, api_client
    try:
        core.delete_namespace(name)
    except ApiException as error:
        if error.status != 404:
            raise
    api_client.close()


def _watch_job_completion(api_client: kube.ApiClient, namespace: str, seen: list[str]) -> None:
    """Record the conditions of every Job in the namespace until one is Complete or Failed.

    The hook Job is deleted once it succeeds, so its success is only visible while it lasts.
    """
    watch = kube_watch.Watch()
    for event in watch.stream(
        kube.BatchV1Api(api_client).list_namespaced_job, namespace, timeout_seconds=200
    ):
        conditions = event["object"].status.conditions or []
        done = [
            c.type for c in conditions if c.status == "True" and c.type in {"Complete", "Failed"}
        ]
        seen.extend(done)
        if done:
            watch.stop()


@pytest.mark.k8s
def test_the_chart_installs_and_every_deployment_becomes_ready(
    helm: Path, kube_cluster: Any, release_namespace: tuple[str, kube.ApiClient]
) -> None:
    namespace, api_client = release_namespace
    release = "backlot"
    kubeconfig = ["--kubeconfig", str(kube_cluster.kubeconfig), "--namespace", namespace]
    job_outcomes: list[str] = []
    watcher = threading.Thread(
        target=_watch_job_completion, args=(api_client, namespace, job_outcomes), daemon=True
    )
    watcher.start()
    started = time.monotonic()
    installed = _run(
        [helm, "install", release, CHART, *kubeconfig, "--values", KWOK_VALUES,
         "--wait", "--wait-for-jobs", "--timeout", "3m"],
        timeout=240,
    )  # fmt: skip
    try:
        assert installed.returncode == 0, installed.stderr
        print(f"helm install --wait took {time.monotonic() - started:.1f}s")
        watcher.join(timeout=10)
        # kwok completes Job pods: the migrations hook ran to completion before the pods.
        assert job_outcomes == ["Complete"]
        # The namespace warns on `restricted` violations; helm prints such warnings.
        assert "violate PodSecurity" not in installed.stderr
        apps = kube.AppsV1Api(api_client)
        deployments = {
            d.metadata.name: (d.status.ready_replicas or 0, d.spec.replicas)
            for d in apps.list_namespaced_deployment(namespace).items
        }
        assert deployments == {
            "backlot-api": (2, 2),
            "backlot-worker": (2, 2),
            "backlot-beat": (1, 1),
        }
        # By its delete policy the succeeded hook Job is gone, and the release is deployed.
        assert kube.BatchV1Api(api_client).list_namespaced_job(namespace).items == []
        history = _run([helm, "history", release, *kubeconfig, "--output", "json"])
        assert json.loads(history.stdout)[-1]["status"] == "deployed"
    finally:
        uninstalled = _run([helm, "uninstall", release, *kubeconfig, "--wait"], timeout=180)
    assert uninstalled.returncode == 0, uninstalled.stderr
