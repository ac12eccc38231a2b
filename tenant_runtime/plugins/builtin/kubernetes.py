"""Kubernetes: the workloads of each entity, read live from a configured cluster.

An entity names its workloads with ``backstage.io/kubernetes-id: <id>`` (objects labelled
``backstage.io/kubernetes-id=<id>``) or ``backstage.io/kubernetes-label-selector: <selector>``,
optionally narrowed by ``backstage.io/kubernetes-namespace``, as Backstage's plugin reads them.
The cluster is reached with the kubeconfig given in the plugin's config (read access to
deployments and pods is all it needs).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import yaml
from kubernetes import client as kube
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from litestar import get
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Parameter
from litestar.response import Template
from sqlalchemy.orm import Session
from urllib3.exceptions import HTTPError

from tenant_runtime.plugins.application import (
    annotation,
    build_plugin_app,
    entity_path,
    entity_ref_of,
    find_entity,
)
from tenant_runtime.plugins.spec import Entity, EntityTab, PluginContext, PluginSpec

KUBERNETES_ID = "backstage.io/kubernetes-id"
LABEL_SELECTOR = "backstage.io/kubernetes-label-selector"
NAMESPACE = "backstage.io/kubernetes-namespace"


class KubernetesConfig(msgspec.Struct, forbid_unknown_fields=True):
    kubeconfig: Annotated[str, msgspec.Meta(min_length=10)]
    context: str | None = None
    request_timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        try:
            parsed = yaml.safe_load(self.kubeconfig)
        except yaml.YAMLError:
            raise ValueError("kubeconfig is not valid YAML") from None
        if not isinstance(parsed, dict) or not parsed.get("clusters"):
            raise ValueError("kubeconfig names no cluster")


class Deployment(msgspec.Struct):
    name: str
    namespace: str
    replicas: int
    ready: int


class Pod(msgspec.Struct):
    name: str
    namespace: str
    phase: str


class Workloads(msgspec.Struct):
    entity_ref: str
    selector: str
    deployments: list[Deployment]
    pods: list[Pod]


class ClusterUnreachable(HTTPException):
    status_code = 502


def selector_of(entity: Entity) -> str | None:
    selector = annotation(entity, LABEL_SELECTOR)
    if isinstance(selector, str) and selector.strip():
        return selector.strip()
    kubernetes_id = annotation(entity, KUBERNETES_ID)
    if isinstance(kubernetes_id, str) and kubernetes_id.strip():
        return f"{KUBERNETES_ID}={kubernetes_id.strip()}"
    return None


def _api_client(config: KubernetesConfig) -> kube.ApiClient:
    api_client: kube.ApiClient = kube_config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
        yaml.safe_load(config.kubeconfig), context=config.context
    )
    return api_client


def workloads(config: KubernetesConfig, entity: Entity) -> Workloads:
    selector = selector_of(entity)
    ref = entity_ref_of(entity)
    if selector is None:
        return Workloads(entity_ref=ref, selector="", deployments=[], pods=[])
    namespace = annotation(entity, NAMESPACE)
    timeout = config.request_timeout_seconds
    try:
        with _api_client(config) as api_client:
            apps, core = kube.AppsV1Api(api_client), kube.CoreV1Api(api_client)
            if isinstance(namespace, str) and namespace:
                deployments = apps.list_namespaced_deployment(
                    namespace, label_selector=selector, _request_timeout=timeout
                )
                pods = core.list_namespaced_pod(
                    namespace, label_selector=selector, _request_timeout=timeout
                )
            else:
                deployments = apps.list_deployment_for_all_namespaces(
                    label_selector=selector, _request_timeout=timeout
                )
                pods = core.list_pod_for_all_namespaces(
                    label_selector=selector, _request_timeout=timeout
                )
    except ApiException as exc:
        raise ClusterUnreachable(
            f"the cluster refused to list workloads ({exc.status}): {exc.reason}"
        ) from None
    except (HTTPError, OSError) as exc:
        raise ClusterUnreachable(f"the cluster is unreachable: {type(exc).__name__}") from None
    return Workloads(
        entity_ref=ref,
        selector=selector,
        deployments=[_deployment(d) for d in _as_dicts(deployments)],
        pods=[_pod(p) for p in _as_dicts(pods)],
    )


def _as_dicts(listing: Any) -> list[dict[str, Any]]:
    # The API's own JSON shape, whatever the client's model classes make optional.
    serialized = kube.ApiClient().sanitize_for_serialization(listing)  # type: ignore[no-untyped-call]
    items: list[dict[str, Any]] = serialized["items"]
    return items


def _deployment(item: dict[str, Any]) -> Deployment:
    return Deployment(
        name=item["metadata"]["name"],
        namespace=item["metadata"]["namespace"],
        replicas=int(item.get("spec", {}).get("replicas") or 0),
        ready=int(item.get("status", {}).get("readyReplicas") or 0),
    )


def _pod(item: dict[str, Any]) -> Pod:
    return Pod(
        name=item["metadata"]["name"],
        namespace=item["metadata"]["namespace"],
        phase=str(item.get("status", {}).get("phase") or "Unknown"),
    )


def _entity(session: Session, ref: str) -> Entity:
    entity = find_entity(session, ref)
    if entity is None:
        raise NotFoundException(f"no entity {ref} in the catalog")
    return entity


@get("/api/workloads", sync_to_thread=True)
def entity_workloads(
    db_session: Session, plugin: PluginContext, entity: Annotated[str, Parameter(query="entity")]
) -> Workloads:
    return workloads(plugin.config, _entity(db_session, entity))


@get("/entity/{kind:str}/{namespace:str}/{name:str}", sync_to_thread=True)
def entity_page(
    db_session: Session, plugin: PluginContext, kind: str, namespace: str, name: str
) -> Template:
    found = workloads(plugin.config, _entity(db_session, f"{kind}:{namespace}/{name}"))
    return Template(template_name="plugins/kubernetes/entity.html", context={"w": found})


def _tabs(_: PluginContext, entity: Entity) -> list[EntityTab]:
    if selector_of(entity) is None:
        return []
    return [
        EntityTab("kubernetes", "Kubernetes", f"/plugins/kubernetes/entity/{entity_path(entity)}")
    ]


def _build(context: PluginContext) -> Any:
    return build_plugin_app(context, [entity_workloads, entity_page])


plugin = PluginSpec(
    id="kubernetes",
    name="Kubernetes",
    version="1.0.0",
    tier="free",
    description="The workloads of each entity, read live from your cluster.",
    runtime_releases=">=0.1,<1",
    build_app=_build,
    config_schema=KubernetesConfig,
    entity_tabs=_tabs,
)
