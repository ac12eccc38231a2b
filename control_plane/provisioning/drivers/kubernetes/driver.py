"""The production driver: each tenant in its own hardened namespace.

Every object is written with server-side apply under one field manager, so a re-run
sends the whole intent again and the API server converges it; fields we stop sending
are removed. The names created are returned to the reconciler, which stores them.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict
from typing import Any

import structlog
import urllib3
from kubernetes import client as kube
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError
from sqlalchemy.engine import make_url

from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.base import (
    ConditionUpdate,
    DriverError,
    Progress,
    RuntimeObservation,
    RuntimeSpec,
    TransientDriverError,
)
from control_plane.provisioning.drivers.kubernetes import drift as drift_check
from control_plane.provisioning.drivers.kubernetes import manifests
from control_plane.provisioning.drivers.kubernetes.manifests import (
    ClusterConfig,
    Manifest,
    TenantNames,
)
from control_plane.provisioning.tenant_databases import TenantDatabases
from control_plane.runtime_link.service import runtime_token

log = structlog.get_logger(__name__)

FIELD_MANAGER = "backlot-control-plane"
# Waiting reasons that will not fix themselves: the tenant fails with the reason.
_STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
    }
)


def cluster_config(settings: Settings) -> ClusterConfig:
    return ClusterConfig(
        image=settings.kube_runtime_image,
        base_domain=settings.base_domain,
        control_plane_url=settings.resolved_runtime_control_plane_url,
        image_pull_policy=settings.kube_image_pull_policy,
        ingress_class=settings.kube_ingress_class,
        ingress_namespace=settings.kube_ingress_namespace,
        control_plane_namespace=settings.kube_control_plane_namespace,
        control_plane_service=settings.kube_control_plane_service,
        control_plane_port=settings.kube_control_plane_service_port,
        cluster_issuer=settings.kube_cluster_issuer,
        database_cidr=settings.kube_database_cidr,
        pod_security_version=settings.kube_pod_security_version,
        tolerations=json.loads(settings.kube_tolerations),
        node_selector=json.loads(settings.kube_node_selector),
    )


def api_client(settings: Settings) -> kube.ApiClient:
    """A client from the configured kubeconfig, or the pod's own service account."""
    if settings.kube_config:
        return kube_config.new_client_from_config(
            config_file=settings.kube_config, context=settings.kube_context or None
        )
    configuration = kube.Configuration()
    kube_config.load_incluster_config(client_configuration=configuration)
    return kube.ApiClient(configuration)


def _classify(exc: Exception, doing: str) -> Exception:
    """Turn an API failure into what the reconciler acts on: retry, or fail with a reason."""
    status = getattr(exc, "status", None)
    if (
        isinstance(exc, urllib3.exceptions.HTTPError)
        or status in (None, 409, 429)
        or (status and status >= 500)
    ):
        return TransientDriverError(f"{doing}: {exc}")
    if status == 403:
        return DriverError("Forbidden", f"{doing}: the cluster refused: {_reason(exc)}")
    return DriverError("InvalidObject", f"{doing}: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    try:
        return str(json.loads(body)["message"]) if body else str(exc)
    except (ValueError, KeyError, TypeError):
        return str(exc)


class KubernetesDriver:
    name = "kubernetes"

    def __init__(
        self,
        settings: Settings,
        *,
        client: kube.ApiClient | None = None,
        databases: TenantDatabases | None = None,
    ) -> None:
        self.settings = settings
        self.config = cluster_config(settings)
        self._client = client or api_client(settings)
        self._dynamic = DynamicClient(self._client)
        self._core = kube.CoreV1Api(self._client)
        self._apps = kube.AppsV1Api(self._client)
        self.databases = databases or TenantDatabases(
            settings.tenant_database_admin_url.get_secret_value(), settings.tenant_database_host
        )

    # -- plumbing ----------------------------------------------------------------------

    def _apply(self, manifest: Manifest) -> None:
        kind = manifest["kind"]
        try:
            resource = self._dynamic.resources.get(api_version=manifest["apiVersion"], kind=kind)
            resource.server_side_apply(
                body=manifest, field_manager=FIELD_MANAGER, force_conflicts=True
            )
        except (DynamicApiError, ApiException, urllib3.exceptions.HTTPError) as exc:
            raise _classify(exc, f"applying {kind} {manifest['metadata']['name']}") from exc

    def _read_secret(self, names: TenantNames) -> dict[str, str]:
        try:
            found = self._core.read_namespaced_secret(names.secret, names.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return {}
            raise _classify(exc, "reading the tenant's secret") from exc
        return {key: base64.b64decode(value).decode() for key, value in (found.data or {}).items()}

    def _deployment_status(self, names: TenantNames) -> tuple[int, int, bool]:
        """(desired, available, rolled out) for the tenant's Deployment."""
        try:
            found = self._apps.read_namespaced_deployment(names.deployment, names.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return 0, 0, False
            raise _classify(exc, "reading the portal's Deployment") from exc
        desired = (found.spec.replicas if found.spec else 0) or 0
        status = found.status or kube.V1DeploymentStatus()
        generation = (found.metadata.generation if found.metadata else 0) or 0
        # As `kubectl rollout status`: the old release's pods must be gone too, or a new
        # release whose pods never become ready would count the old pods as available.
        rolled_out = (
            (status.observed_generation or 0) >= generation
            and (status.updated_replicas or 0) >= desired
            and (status.replicas or 0) <= (status.updated_replicas or 0)
        )
        return desired, status.available_replicas or 0, rolled_out

    def _stuck_reason(self, spec: RuntimeSpec, names: TenantNames) -> tuple[str, str] | None:
        pods = self._core.list_namespaced_pod(
            names.namespace, label_selector=f"{manifests.TENANT_LABEL}={spec.tenant_id}"
        )
        wanted = manifests.runtime_image(spec, self.config)
        for pod in pods.items:
            if pod.status is None or pod.metadata is None or pod.metadata.deletion_timestamp:
                continue
            # Only the pods of the release being rolled out count: during a rollback the
            # failed release's pods still crash until the Deployment scales them away.
            images = {c.image for c in (pod.spec.containers if pod.spec else [])}
            if wanted not in images:
                continue
            statuses = [
                *(pod.status.init_container_statuses or []),
                *(pod.status.container_statuses or []),
            ]
            for status in statuses:
                waiting = status.state.waiting if status.state else None
                if waiting and waiting.reason in _STUCK_REASONS:
                    return (
                        waiting.reason,
                        f"{pod.metadata.name}/{status.name}: {waiting.message or waiting.reason}",
                    )
        return None

    def _url(self, spec: RuntimeSpec) -> str:
        return f"https://{manifests.host(spec, self.config)}"

    # -- verbs -------------------------------------------------------------------------

    def ensure(self, spec: RuntimeSpec, progress: Progress) -> RuntimeObservation:
        if spec.size_tier not in manifests.SIZE_TIERS:
            raise DriverError("UnknownSizeTier", f"no size tier named {spec.size_tier!r}")
        names = TenantNames.for_tenant(spec)
        self._refuse_terminating_namespace(names)

        existing = self._read_secret(names)
        password = (
            make_url(existing["database-url"]).password if "database-url" in existing else None
        )
        try:
            database = self.databases.ensure(spec.tenant_id, password=password)
        except Exception as exc:  # psycopg's errors vary; a database hiccup is retried
            raise TransientDriverError(
                f"preparing the tenant database: {type(exc).__name__}"
            ) from exc
        progress(
            ConditionUpdate(
                "DatabaseReady", True, "Provisioned", f"database {database.name} is ready"
            )
        )

        secret_values = {
            "database-url": database.url,
            "control-plane-token": runtime_token(self.settings, spec.tenant_id),
        }
        objects = manifests.tenant_objects(spec, names, self.config, secret_values)
        # The address last: a portal coming back from suspension keeps showing the suspended
        # page until its pods are ready, instead of the ingress controller's error.
        for manifest in objects:
            if manifest["kind"] != "Ingress":
                self._apply(manifest)
        progress(
            ConditionUpdate(
                "WorkloadReady", False, "RollingOut", f"namespace {names.namespace} applied"
            )
        )

        self._wait_available(spec, names)
        for manifest in objects:
            if manifest["kind"] == "Ingress":
                self._apply(manifest)
        self._prune(spec, names)
        progress(ConditionUpdate("WorkloadReady", True, "Available", "the portal's pods are ready"))
        return RuntimeObservation(
            database_ready=True,
            workload_ready=True,
            url=self._url(spec),
            message="available",
            names={**asdict(names), "database": database.name},
        )

    def _refuse_terminating_namespace(self, names: TenantNames) -> None:
        try:
            found = self._core.read_namespace(names.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise _classify(exc, "reading the tenant's namespace") from exc
        if found.status and found.status.phase == "Terminating":
            raise TransientDriverError(f"namespace {names.namespace} is still being deleted")

    def _wait_available(self, spec: RuntimeSpec, names: TenantNames) -> None:
        deadline = time.monotonic() + self.settings.runtime_start_timeout_seconds
        while time.monotonic() < deadline:
            desired, available, rolled_out = self._deployment_status(names)
            if rolled_out and desired > 0 and available >= desired:
                return
            stuck = self._stuck_reason(spec, names)
            if stuck:
                raise DriverError(*stuck)
            time.sleep(0.5)
        timeout = self.settings.runtime_start_timeout_seconds
        why = self._why_not_ready(spec, names)
        raise DriverError(
            "RuntimeUnhealthy", f"the portal's pods were not ready within {timeout:.0f}s{why}"
        )

    def _why_not_ready(self, spec: RuntimeSpec, names: TenantNames) -> str:
        """The first pod condition that is not met, for the operator reading the failure."""
        pods = self._core.list_namespaced_pod(
            names.namespace, label_selector=f"{manifests.TENANT_LABEL}={spec.tenant_id}"
        )
        for pod in pods.items:
            for condition in (pod.status.conditions if pod.status else None) or []:
                if condition.status != "True":
                    detail = condition.message or condition.reason or "no reason given"
                    return f": {condition.type} is {condition.status} ({detail})"
        return "" if pods.items else ": no pod was created"

    def observe(self, spec: RuntimeSpec) -> RuntimeObservation:
        """Readiness and drift, from reads only: an unchanged tenant costs no writes."""
        names = TenantNames.for_tenant(spec)
        desired, available, rolled_out = self._deployment_status(names)
        ready = desired > 0 and available >= desired and rolled_out
        return RuntimeObservation(
            database_ready=self.databases.exists(spec.tenant_id),
            workload_ready=ready,
            url=self._url(spec) if ready else None,
            message="available" if ready else f"{available}/{desired} pods available",
            names=asdict(names),
            drift=self._drift(spec, names),
        )

    def _desired(self, spec: RuntimeSpec, names: TenantNames) -> list[Manifest]:
        # The credentials are compared by key only (see drift.object_drifted).
        return manifests.tenant_objects(
            spec, names, self.config, {"database-url": "", "control-plane-token": ""}
        )

    def _live(self, spec: RuntimeSpec, names: TenantNames) -> dict[tuple[str, str], dict[str, Any]]:
        """Every object of ours in the tenant's namespace, one LIST per kind we manage."""
        live: dict[tuple[str, str], dict[str, Any]] = {}
        kinds = {(m["apiVersion"], m["kind"]) for m in self._desired(spec, names)}
        for api_version, kind in sorted(kinds):
            resource = self._dynamic.resources.get(api_version=api_version, kind=kind)
            try:
                if kind == "Namespace":
                    found = [resource.get(name=names.namespace).to_dict()]
                else:
                    found = resource.get(
                        namespace=names.namespace,
                        label_selector=f"{manifests.TENANT_LABEL}={spec.tenant_id}",
                    ).to_dict()["items"]
            except (DynamicApiError, ApiException) as exc:
                if getattr(exc, "status", None) == 404:
                    continue
                raise _classify(exc, f"listing {kind} objects") from exc
            for item in found:
                live[(kind, item["metadata"]["name"])] = item
        return live

    def _drift(self, spec: RuntimeSpec, names: TenantNames) -> list[str]:
        desired = {(m["kind"], m["metadata"]["name"]): m for m in self._desired(spec, names)}
        live = self._live(spec, names)
        drift = [f"{kind}/{name} missing" for kind, name in desired if (kind, name) not in live]
        drift += [
            f"{kind}/{name} edited"
            for (kind, name), manifest in desired.items()
            if (kind, name) in live and drift_check.object_drifted(manifest, live[(kind, name)])
        ]
        drift += [f"{kind}/{name} not wanted" for kind, name in live if (kind, name) not in desired]
        return sorted(drift)

    def _prune(self, spec: RuntimeSpec, names: TenantNames) -> None:
        """Delete objects carrying the tenant's label that the spec no longer asks for."""
        desired = {(m["kind"], m["metadata"]["name"]) for m in self._desired(spec, names)}
        apis = {m["kind"]: m["apiVersion"] for m in self._desired(spec, names)}
        for kind, name in self._live(spec, names):
            if (kind, name) in desired or kind == "Namespace":
                continue
            resource = self._dynamic.resources.get(api_version=apis[kind], kind=kind)
            try:
                resource.delete(name=name, namespace=names.namespace)
            except (DynamicApiError, ApiException) as exc:
                if getattr(exc, "status", None) != 404:
                    raise _classify(exc, f"pruning {kind} {name}") from exc
            log.info("kubernetes.pruned", kind=kind, name=name)

    def suspend(self, spec: RuntimeSpec) -> None:
        """Send the address to the suspended page first, then stop the pods; data is kept."""
        names = TenantNames.for_tenant(spec)
        for manifest in manifests.suspended_objects(spec, names, self.config):
            self._apply(manifest)
        self._scale_to_zero(spec, names)

    def _scale_to_zero(self, spec: RuntimeSpec, names: TenantNames) -> None:
        self._apply(manifests.deployment(spec, names, self.config, replicas=0))

    def resume(self, spec: RuntimeSpec, progress: Progress) -> RuntimeObservation:
        return self.ensure(spec, progress)

    def destroy(self, spec: RuntimeSpec) -> None:
        """In order: no new traffic, no pods, then the namespace (waited for); data is kept."""
        names = TenantNames.for_tenant(spec)
        try:
            self._dynamic.resources.get(api_version="networking.k8s.io/v1", kind="Ingress").delete(
                name=names.ingress, namespace=names.namespace
            )
        except (DynamicApiError, ApiException) as exc:
            if getattr(exc, "status", None) != 404:
                raise _classify(exc, "removing the portal's ingress") from exc
        if self._namespace_exists(names):
            self._scale_to_zero(spec, names)
        try:
            self._core.delete_namespace(names.namespace, propagation_policy="Foreground")
        except ApiException as exc:
            if exc.status != 404:
                raise _classify(exc, "deleting the tenant's namespace") from exc
        deadline = time.monotonic() + 120
        while self._namespace_exists(names):
            if time.monotonic() > deadline:
                raise TransientDriverError(f"namespace {names.namespace} is still terminating")
            time.sleep(1)

    def _namespace_exists(self, names: TenantNames) -> bool:
        try:
            self._core.read_namespace(names.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise _classify(exc, "reading the tenant's namespace") from exc
        return True

    def purge(self, spec: RuntimeSpec) -> None:
        try:
            self.databases.drop(spec.tenant_id)
        except Exception as exc:  # psycopg's errors vary; a database hiccup is retried
            raise TransientDriverError(
                f"dropping the tenant database: {type(exc).__name__}"
            ) from exc
