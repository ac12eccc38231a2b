"""The control plane's own identity in the cluster: a ServiceAccount and exactly its rights.

Least privilege, never cluster-admin. The ClusterRole lists what :class:`KubernetesDriver`
does and nothing more:

- ``namespaces``: get, list, watch, create, patch, delete. Each tenant lives in a namespace
  the driver creates by server-side apply (a PATCH; ``create`` too, since an apply that
  creates the object is also checked as a create), reads to refuse one still terminating,
  and deletes on destroy. ``list``/``watch`` let it see the namespaces it made.
- inside namespaces, ``resourcequotas``, ``limitranges``, ``serviceaccounts``, ``secrets``,
  ``configmaps``, ``services``, ``deployments`` (apps), ``networkpolicies`` and
  ``ingresses`` (networking.k8s.io) and ``poddisruptionbudgets`` (policy): get, list,
  create, patch, delete. Apply is a PATCH; drift detection LISTs each kind by the tenant's
  label; pruning and destroy DELETE. No ``update``, ``watch`` or ``deletecollection``.
- ``pods``: get and list only, to read why a portal's containers are waiting.

What it does NOT grant: nodes, persistent volumes, storage, CRDs, webhooks, admission
policies, events, ``pods/exec``, ``pods/log``, ``serviceaccounts/token`` (it cannot mint
tokens, not even for the tenants' ServiceAccounts), and nothing in ``rbac.authorization.k8s.io``:
a control plane that may write Roles or RoleBindings, or ``bind``/``escalate``, could hand
itself or anyone any right. Since it grants no role, the API server's RBAC escalation
check never comes into play.

The honest limit: a ClusterRole bound cluster-wide cannot say "only in tenant
namespaces". RBAC has no label selectors, so the rules for namespaced kinds hold in every
namespace, ``kube-system`` included: this identity can read every Secret in the cluster
and patch or delete Deployments anywhere. Narrowing it to per-namespace RoleBindings would
need the control plane to create RoleBindings, which is the hole above. The mitigation
is the driver's own discipline (it only touches namespaces it created, labelled with
``backlot.dev/tenant-id``) and, to make the cluster enforce it, a future
ValidatingAdmissionPolicy bound to this ServiceAccount that refuses writes to namespaces
without the tenant label. Reads would remain cluster-wide.
"""

from __future__ import annotations

from control_plane.provisioning.drivers.kubernetes.manifests import MANAGED_BY, Manifest

NAME = "backlot-control-plane"

_WRITE = ["get", "list", "create", "patch", "delete"]

RULES: list[dict[str, list[str]]] = [
    {
        "apiGroups": [""],
        "resources": ["namespaces"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": [
            "resourcequotas",
            "limitranges",
            "serviceaccounts",
            "secrets",
            "configmaps",
            "services",
        ],
        "verbs": _WRITE,
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": _WRITE},
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies", "ingresses"],
        "verbs": _WRITE,
    },
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _WRITE},
]


def _labels() -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "backlot-control-plane",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def service_account(namespace: str, name: str = NAME) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels()},
    }


def cluster_role(name: str = NAME) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": _labels()},
        "rules": [{key: list(values) for key, values in rule.items()} for rule in RULES],
    }


def cluster_role_binding(namespace: str, name: str = NAME) -> Manifest:
    """Binds the ClusterRole of the same name to the ServiceAccount of the same name."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": _labels()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }


def control_plane_objects(namespace: str, name: str = NAME) -> list[Manifest]:
    """The ServiceAccount, its ClusterRole and the binding, in apply order."""
    return [
        service_account(namespace, name),
        cluster_role(name),
        cluster_role_binding(namespace, name),
    ]
