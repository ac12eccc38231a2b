"""Every object a tenant's namespace holds, as plain manifests the driver applies.

Pure functions of the tenant's spec and the driver's configuration, so they can be read,
tested and diffed without a cluster. The driver applies them with server-side apply
under one field manager, in the order :func:`tenant_objects` returns them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from control_plane.provisioning.drivers.base import RuntimeSpec

MANAGED_BY = "backlot-control-plane"
TENANT_LABEL = "backlot.dev/tenant-id"
RUNTIME_PORT = 7007
METADATA_ADDRESS = ipaddress.ip_network("169.254.169.254/32")

Manifest = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SizeTier:
    replicas: int
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    quota_cpu: str
    quota_memory: str
    quota_pods: int


SIZE_TIERS: dict[str, SizeTier] = {
    "small": SizeTier(1, "100m", "500m", "256Mi", "512Mi", "2", "4Gi", 10),
    "medium": SizeTier(2, "250m", "1", "512Mi", "1Gi", "4", "8Gi", 20),
    "large": SizeTier(3, "500m", "2", "1Gi", "2Gi", "8", "16Gi", 40),
}


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """What the driver knows about the cluster it provisions into."""

    image: str
    base_domain: str
    control_plane_url: str
    image_pull_policy: str = "IfNotPresent"
    ingress_class: str = "nginx"
    ingress_namespace: str = "ingress-nginx"
    control_plane_namespace: str = "backlot"
    control_plane_service: str = "backlot-api"
    control_plane_port: int = 80
    cluster_issuer: str = "letsencrypt"
    database_cidr: str = "10.0.0.0/8"
    pod_security_version: str = "v1.34"
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TenantNames:
    """The names the driver creates; stored on the tenant, never recomputed from a template."""

    namespace: str
    deployment: str = "portal"
    service: str = "portal"
    service_account: str = "portal"
    secret: str = "portal-credentials"  # noqa: S105 - a Secret's name
    config_map: str = "portal-config"
    ingress: str = "portal"
    tls_secret: str = "portal-tls"  # noqa: S105 - a Secret's name, not a secret
    # Only while suspended: the ExternalName Service that leads to the control plane's page.
    suspended_service: str = "portal-suspended"

    @classmethod
    def for_tenant(cls, spec: RuntimeSpec) -> TenantNames:
        """The stored names if the tenant has them, else the current naming scheme's."""
        known = {f for f in cls.__dataclass_fields__ if f in spec.names}
        if "namespace" in known:
            return cls(**{f: spec.names[f] for f in known})
        return cls(namespace=f"t-{spec.slug}")


def labels(spec: RuntimeSpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "tenant-runtime",
        "app.kubernetes.io/instance": spec.slug,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/version": spec.runtime_release,
        TENANT_LABEL: spec.tenant_id,
    }


def _selector(spec: RuntimeSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": "tenant-runtime", TENANT_LABEL: spec.tenant_id}


def _metadata(spec: RuntimeSpec, names: TenantNames, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": names.namespace, "labels": labels(spec), **extra}


def namespace(spec: RuntimeSpec, names: TenantNames, config: ClusterConfig) -> Manifest:
    pod_security = {
        f"pod-security.kubernetes.io/{mode}{suffix}": value
        for mode in ("enforce", "warn", "audit")
        for suffix, value in (("", "restricted"), ("-version", config.pod_security_version))
    }
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": names.namespace, "labels": {**labels(spec), **pod_security}},
    }


def resource_quota(spec: RuntimeSpec, names: TenantNames) -> Manifest:
    tier = SIZE_TIERS[spec.size_tier]
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _metadata(spec, names, "tenant-quota"),
        "spec": {
            "hard": {
                "requests.cpu": tier.quota_cpu,
                "limits.cpu": tier.quota_cpu,
                "requests.memory": tier.quota_memory,
                "limits.memory": tier.quota_memory,
                "pods": str(tier.quota_pods),
                "persistentvolumeclaims": "0",
                "services.loadbalancers": "0",
                "services.nodeports": "0",
                "count/secrets": "10",
                "count/configmaps": "10",
            }
        },
    }


def limit_range(spec: RuntimeSpec, names: TenantNames) -> Manifest:
    tier = SIZE_TIERS[spec.size_tier]
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _metadata(spec, names, "tenant-limits"),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": tier.cpu_limit, "memory": tier.memory_limit},
                    "defaultRequest": {"cpu": tier.cpu_request, "memory": tier.memory_request},
                    "max": {"cpu": tier.cpu_limit, "memory": tier.memory_limit},
                }
            ]
        },
    }


def _database_egress(cidr: str) -> dict[str, Any]:
    network = ipaddress.ip_network(cidr, strict=False)
    block: dict[str, Any] = {"cidr": str(network)}
    if network.version == 4 and METADATA_ADDRESS.subnet_of(network):  # type: ignore[arg-type]
        # The cloud metadata address would hand out node credentials.
        block["except"] = [str(METADATA_ADDRESS)]
    return {"to": [{"ipBlock": block}], "ports": [{"protocol": "TCP", "port": 5432}]}


def network_policies(
    spec: RuntimeSpec, names: TenantNames, config: ClusterConfig
) -> list[Manifest]:
    def policy(name: str, body: dict[str, Any]) -> Manifest:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _metadata(spec, names, name),
            "spec": body,
        }

    def namespace_named(name: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    return [
        policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        policy(
            "allow-dns",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                **namespace_named("kube-system"),
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
        policy(
            "allow-ingress-controller",
            {
                "podSelector": {"matchLabels": _selector(spec)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [namespace_named(config.ingress_namespace)],
                        "ports": [{"protocol": "TCP", "port": RUNTIME_PORT}],
                    }
                ],
            },
        ),
        policy(
            "allow-egress-database-and-control-plane",
            {
                "podSelector": {"matchLabels": _selector(spec)},
                "policyTypes": ["Egress"],
                "egress": [
                    _database_egress(config.database_cidr),
                    {"to": [namespace_named(config.control_plane_namespace)]},
                ],
            },
        ),
    ]


def service_account(spec: RuntimeSpec, names: TenantNames) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(spec, names, names.service_account),
        # The runtime never calls the Kubernetes API: it gets no token at all.
        "automountServiceAccountToken": False,
    }


def secret(spec: RuntimeSpec, names: TenantNames, values: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(spec, names, names.secret),
        "type": "Opaque",
        "stringData": values,
    }


def config_map(spec: RuntimeSpec, names: TenantNames, config: ClusterConfig) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(spec, names, names.config_map),
        "data": {
            "BACKLOT_RUNTIME_TENANT_ID": spec.tenant_id,
            "BACKLOT_RUNTIME_TENANT_SLUG": spec.slug,
            "BACKLOT_RUNTIME_ORGANIZATION_NAME": spec.organization_name,
            "BACKLOT_RUNTIME_HOST": "0.0.0.0",  # noqa: S104 - inside the pod, behind the Service
            "BACKLOT_RUNTIME_PORT": str(RUNTIME_PORT),
            "BACKLOT_RUNTIME_DATA_DIR": "/var/lib/backlot",
            "BACKLOT_RUNTIME_LOG_FORMAT": "json",
            "BACKLOT_RUNTIME_CONTROL_PLANE_URL": config.control_plane_url,
        },
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def runtime_image(spec: RuntimeSpec, config: ClusterConfig) -> str:
    """The image the tenant's portal runs: the registered release's, or the repository's tag."""
    return spec.image or f"{config.image}:{spec.runtime_release}"


def deployment(
    spec: RuntimeSpec, names: TenantNames, config: ClusterConfig, *, replicas: int | None = None
) -> Manifest:
    tier = SIZE_TIERS[spec.size_tier]
    image = runtime_image(spec, config)
    env_from = [{"configMapRef": {"name": names.config_map}}]
    env = [
        {
            "name": "BACKLOT_RUNTIME_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": names.secret, "key": "database-url"}},
        },
        {
            "name": "BACKLOT_RUNTIME_CONTROL_PLANE_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": names.secret, "key": "control-plane-token"}},
        },
    ]
    resources = {
        "requests": {"cpu": tier.cpu_request, "memory": tier.memory_request},
        "limits": {"cpu": tier.cpu_limit, "memory": tier.memory_limit},
    }
    volume_mounts = [
        {"name": "data", "mountPath": "/var/lib/backlot"},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir: the root filesystem is read-only
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec, names, names.deployment),
        "spec": {
            "replicas": tier.replicas if replicas is None else replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": _selector(spec)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": labels(spec)},
                "spec": {
                    "serviceAccountName": names.service_account,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "tolerations": config.tolerations,
                    "nodeSelector": config.node_selector,
                    # The schema is migrated before the new release serves (like a migration Job).
                    "initContainers": [
                        {
                            "name": "migrate",
                            "image": image,
                            "imagePullPolicy": config.image_pull_policy,
                            "args": ["migrate"],
                            "envFrom": env_from,
                            "env": env,
                            "resources": resources,
                            "securityContext": _container_security(),
                            "volumeMounts": volume_mounts,
                        }
                    ],
                    "containers": [
                        {
                            "name": "portal",
                            "image": image,
                            "imagePullPolicy": config.image_pull_policy,
                            "args": ["serve"],
                            "ports": [
                                {"name": "http", "containerPort": RUNTIME_PORT, "protocol": "TCP"}
                            ],
                            "envFrom": env_from,
                            "env": env,
                            "resources": resources,
                            "securityContext": _container_security(),
                            "volumeMounts": volume_mounts,
                            "readinessProbe": {
                                "httpGet": {"path": "/readyz", "port": "http"},
                                "periodSeconds": 5,
                                "failureThreshold": 3,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 10,
                                "failureThreshold": 6,
                            },
                            "startupProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 2,
                                "failureThreshold": 60,
                            },
                        }
                    ],
                    "volumes": [
                        {"name": "data", "emptyDir": {"sizeLimit": "64Mi"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def service(spec: RuntimeSpec, names: TenantNames) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, names, names.service),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(spec),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def host(spec: RuntimeSpec, config: ClusterConfig) -> str:
    return f"{spec.slug}.{config.base_domain}"


def ingress(
    spec: RuntimeSpec,
    names: TenantNames,
    config: ClusterConfig,
    *,
    backend: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> Manifest:
    """The portal's address; ``backend`` and ``annotations`` send it elsewhere (suspension)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(
            spec,
            names,
            names.ingress,
            annotations={
                "cert-manager.io/cluster-issuer": config.cluster_issuer,
                **(annotations or {}),
            },
        ),
        "spec": {
            "ingressClassName": config.ingress_class,
            "tls": [{"hosts": [host(spec, config)], "secretName": names.tls_secret}],
            "rules": [
                {
                    "host": host(spec, config),
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": backend
                                or {"service": {"name": names.service, "port": {"name": "http"}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def control_plane_host(config: ClusterConfig) -> str:
    return f"{config.control_plane_service}.{config.control_plane_namespace}.svc.cluster.local"


def suspended_service(spec: RuntimeSpec, names: TenantNames, config: ClusterConfig) -> Manifest:
    """A name in the tenant's namespace for the control plane's Service.

    An Ingress can only name Services of its own namespace; an ExternalName Service is the
    standard way to point one at a Service elsewhere.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, names, names.suspended_service),
        "spec": {
            "type": "ExternalName",
            "externalName": control_plane_host(config),
            "ports": [
                {
                    "name": "http",
                    "port": config.control_plane_port,
                    "targetPort": config.control_plane_port,
                    "protocol": "TCP",
                }
            ],
        },
    }


def suspended_ingress(spec: RuntimeSpec, names: TenantNames, config: ClusterConfig) -> Manifest:
    """The portal's address, same host and certificate, answered by the suspended page.

    Every path is rewritten to the page of this portal (``/suspended/<slug>``) and the
    request reaches the control plane under its own Service name. The annotations are
    ingress-nginx's; with another controller the page is also served by Host header at
    ``/suspended``.
    """
    return ingress(
        spec,
        names,
        config,
        backend={
            "service": {"name": names.suspended_service, "port": {"name": "http"}},
        },
        annotations={
            "nginx.ingress.kubernetes.io/rewrite-target": f"/suspended/{spec.slug}",
            "nginx.ingress.kubernetes.io/upstream-vhost": control_plane_host(config),
        },
    )


def suspended_objects(
    spec: RuntimeSpec, names: TenantNames, config: ClusterConfig
) -> list[Manifest]:
    """What changes while the portal is suspended: its address leads to the page, in order."""
    return [suspended_service(spec, names, config), suspended_ingress(spec, names, config)]


def disruption_budget(spec: RuntimeSpec, names: TenantNames) -> Manifest:
    tier = SIZE_TIERS[spec.size_tier]
    # One replica cannot both stay up and let a node drain; larger tiers keep one serving.
    budget = {"minAvailable": tier.replicas - 1} if tier.replicas > 1 else {"maxUnavailable": 1}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(spec, names, names.deployment),
        "spec": {"selector": {"matchLabels": _selector(spec)}, **budget},
    }


def tenant_objects(
    spec: RuntimeSpec, names: TenantNames, config: ClusterConfig, secret_values: dict[str, str]
) -> list[Manifest]:
    """Everything in apply order: the namespace and its fences first, the workload last."""
    return [
        namespace(spec, names, config),
        resource_quota(spec, names),
        limit_range(spec, names),
        *network_policies(spec, names, config),
        service_account(spec, names),
        secret(spec, names, secret_values),
        config_map(spec, names, config),
        deployment(spec, names, config),
        service(spec, names),
        ingress(spec, names, config),
        disruption_budget(spec, names),
    ]
