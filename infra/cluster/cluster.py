"""The real Kubernetes test cluster: etcd, a control plane and kwok fake nodes on 127.0.0.1.

``ensure_cluster()`` starts (or reuses) five processes built by ``infra/cluster/build.sh``:
etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kwok controller, and
registers fake Nodes that kwok keeps Ready. It is the same control plane as a real cluster:
authentication by client certificates and ServiceAccount tokens, ``Node,RBAC`` authorization,
the default admission plugins (PodSecurity included) plus NodeRestriction, and the controller
manager's controllers (deployments, replica sets, namespace deletion, garbage collection,
ServiceAccount tokens, ...). There is no kubelet and no container runtime: kwok writes the pod
status a kubelet would (Running, Ready, a fake pod IP from 10.244.0.0/16), so no image is
pulled, no container runs, and ``kubectl logs``/``exec`` cannot work. Services get a
ClusterIP from 10.96.0.0/16, but nothing routes to it.

What a workload needs to be scheduled onto the fake nodes (the product's Kubernetes driver
adds it to everything it creates):

- a toleration for the kwok taint::

      tolerations:
      - {key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}

- optionally ``nodeSelector: {type: kwok}``, so it could never land on a real node.

Without the toleration its pods stay Pending (``0/2 nodes are available: ... untolerated
taint``). Namespaces are ``privileged`` for PodSecurity unless they carry a
``pod-security.kubernetes.io/enforce`` label.

Everything lives under ``$BACKLOT_CACHE_DIR/cluster`` (default ``~/.cache/backlot``): the
binaries (``bin/``), the certificates (``pki/``, made once and kept), etcd's data (``etcd/``,
kept between runs), one log per process (``logs/``), pid files (``run/``) and the admin
kubeconfig (``admin.kubeconfig``, user ``backlot-test-admin`` in ``system:masters``).

Ports on 127.0.0.1, each overridable by its environment variable: kube-apiserver 56443
(``BACKLOT_TEST_APISERVER_PORT``), etcd 56379 and 56380 (``BACKLOT_TEST_ETCD_PORT``, peer is
the next one), kube-controller-manager 56257, kube-scheduler 56259, kwok 56247
(``BACKLOT_TEST_KCM_PORT``, ``BACKLOT_TEST_SCHEDULER_PORT``, ``BACKLOT_TEST_KWOK_PORT``).

CLI: ``uv run python -m infra.cluster.cluster up|down|status|kubeconfig``. Besides the
standard library it needs only ``cryptography`` (for the certificates), which is in the
project's virtualenv.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import fcntl
import hashlib
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "KWOK_NODE_SELECTOR",
    "KWOK_TOLERATION",
    "ClusterInfo",
    "ClusterUnavailable",
    "cluster_dir",
    "ensure_cluster",
    "main",
    "stop_cluster",
]

HOST = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service, first address of SERVICE_CIDR
POD_CIDR = "10.244.0.1/16"  # kwok hands out fake pod IPs from here
NODE_IP = "10.240.0.1"  # outside POD_CIDR
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN_USER = "backlot-test-admin"
NODE_NAMES = ("kwok-node-0", "kwok-node-1")
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
KWOK_NODE_SELECTOR = {"type": "kwok"}

# Measured on the 2-core CI machine with an empty GOCACHE (see infra/cluster/build.sh).
COLD_BUILD_MINUTES = 15
BUILD_HINT = (
    "run `make cluster-build` (infra/cluster/build.sh); "
    f"a cold build takes about {COLD_BUILD_MINUTES} minutes"
)
LOG_TAIL_LINES = 40
STOP_TIMEOUT = 20.0
CERT_DAYS = 3650

VERSIONS_FILE = Path(__file__).with_name("versions.env")
# kwok's pod stages: its defaults, plus images whose pods never become ready or crash-loop.
KWOK_STAGES_FILE = Path(__file__).with_name("kwok-stages.yaml")
NEVER_READY_IMAGE = "backlot.test/tenant-runtime:never-ready"
CRASH_LOOP_IMAGE = "backlot.test/tenant-runtime:crash-loop"


class ClusterUnavailable(RuntimeError):
    """The test cluster could not be found or started; the message says what to do."""


@dataclass(frozen=True)
class ClusterInfo:
    """How to reach the running test cluster as its administrator."""

    kubeconfig: Path
    server: str
    ca_file: Path
    client_cert_file: Path
    client_key_file: Path
    kubectl: Path
    kubernetes_version: str
    node_names: tuple[str, ...]
    log_dir: Path


# --- paths and configuration ---------------------------------------------------------------


def cluster_dir() -> Path:
    """The root of everything the test cluster keeps: ``$BACKLOT_CACHE_DIR/cluster``."""
    root = os.environ.get("BACKLOT_CACHE_DIR") or str(Path.home() / ".cache" / "backlot")
    return Path(root).expanduser() / "cluster"


@dataclass(frozen=True)
class _Paths:
    root: Path
    bin: Path
    pki: Path
    etcd_data: Path
    logs: Path
    run: Path
    lock: Path
    kwok_home: Path

    def kubeconfig(self, user: str) -> Path:
        return self.root / f"{user}.kubeconfig"

    def cert(self, name: str) -> Path:
        return self.pki / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.pki / f"{name}.key"


def _paths() -> _Paths:
    root = cluster_dir()
    return _Paths(
        root=root,
        bin=root / "bin",
        pki=root / "pki",
        etcd_data=root / "etcd",
        logs=root / "logs",
        run=root / "run",
        lock=root / "cluster.lock",
        kwok_home=root / "kwok-home",
    )


def _versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            versions[key.strip()] = value.split("#", 1)[0].strip()
    return versions


def _port(variable: str, default: int) -> int:
    raw = os.environ.get(variable)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ClusterUnavailable(f"{variable}={raw!r} is not a port number") from None


@dataclass(frozen=True)
class _Ports:
    apiserver: int
    etcd: int
    etcd_peer: int
    controller_manager: int
    scheduler: int
    kwok: int


def _ports() -> _Ports:
    etcd = _port("BACKLOT_TEST_ETCD_PORT", 56379)
    return _Ports(
        apiserver=_port("BACKLOT_TEST_APISERVER_PORT", 56443),
        etcd=etcd,
        etcd_peer=etcd + 1,
        controller_manager=_port("BACKLOT_TEST_KCM_PORT", 56257),
        scheduler=_port("BACKLOT_TEST_SCHEDULER_PORT", 56259),
        kwok=_port("BACKLOT_TEST_KWOK_PORT", 56247),
    )


def _binaries(paths: _Paths) -> dict[str, Path]:
    versions = _versions()
    kube = versions["KUBERNETES_VERSION"]
    return {
        "etcd": paths.bin / f"etcd-{versions['ETCD_VERSION']}",
        "kube-apiserver": paths.bin / f"kube-apiserver-{kube}",
        "kube-controller-manager": paths.bin / f"kube-controller-manager-{kube}",
        "kube-scheduler": paths.bin / f"kube-scheduler-{kube}",
        "kubectl": paths.bin / f"kubectl-{kube}",
        "kwok": paths.bin / f"kwok-{versions['KWOK_VERSION']}",
    }


def _require_binaries(paths: _Paths) -> dict[str, Path]:
    binaries = _binaries(paths)
    missing = [path.name for path in binaries.values() if not os.access(path, os.X_OK)]
    if missing:
        raise ClusterUnavailable(
            f"Kubernetes test binaries not built: {BUILD_HINT} "
            f"(missing in {paths.bin}: {', '.join(missing)})"
        )
    return binaries


def _info(paths: _Paths) -> ClusterInfo:
    return ClusterInfo(
        kubeconfig=paths.kubeconfig("admin"),
        server=f"https://{HOST}:{_ports().apiserver}",
        ca_file=paths.cert("ca"),
        client_cert_file=paths.cert("admin"),
        client_key_file=paths.key("admin"),
        kubectl=_binaries(paths)["kubectl"],
        kubernetes_version=_versions()["KUBERNETES_VERSION"],
        node_names=NODE_NAMES,
        log_dir=paths.logs,
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Parallel test workers race to start the same cluster; the first one holds the lock
    # while it starts it and the others then find it answering.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    tail = "\n".join(lines[-LOG_TAIL_LINES:])
    return f"last lines of {path}:\n{tail}"


def _write_private(path: Path, data: bytes) -> None:
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_bytes(data)
    scratch.chmod(0o600)
    scratch.replace(path)


# --- certificates and kubeconfigs ------------------------------------------------------------


@dataclass(frozen=True)
class _ClientIdentity:
    file_name: str
    user: str
    groups: tuple[str, ...] = ()


# The controller manager and scheduler use their own identities, which the apiserver's
# bootstrap RBAC policy grants exactly what they need. kwok rewrites node and pod status, node
# leases and pod deletions across all namespaces; it runs as an administrator, as kwokctl does.
_CLIENTS = (
    _ClientIdentity("admin", ADMIN_USER, ("system:masters",)),
    _ClientIdentity("kube-controller-manager", "system:kube-controller-manager"),
    _ClientIdentity("kube-scheduler", "system:kube-scheduler"),
    _ClientIdentity("kwok", "kwok-controller", ("system:masters",)),
)


# Bump when the set of files in pki/ changes: the next start then makes them all anew.
PKI_LAYOUT = "2"


def _pki_complete(paths: _Paths) -> bool:
    try:
        return (paths.pki / "complete").read_text().strip() == PKI_LAYOUT
    except OSError:
        return False


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, groups: Sequence[str] = ()) -> x509.Name:
    # Kubernetes reads a client certificate's CN as the user and each O as a group.
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    usage: x509.ObjectIdentifier | None = None,
    sans: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    """A CA certificate when `issuer` is None (self-signed), else a leaf for `usage`."""
    is_ca = issuer is None
    issuer_name, issuer_key = (subject, key) if issuer is None else (issuer[0].subject, issuer[1])
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), False)
    return builder.sign(issuer_key, hashes.SHA256())


def _ensure_pki(paths: _Paths) -> bool:
    """Make the CAs, certificates and ServiceAccount key unless they exist; True if made."""
    if _pki_complete(paths):
        return False
    files: dict[str, bytes] = {}

    def issue(
        file_name: str,
        subject: x509.Name,
        issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
        usage: x509.ObjectIdentifier | None = None,
        sans: Sequence[x509.GeneralName] = (),
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = _new_key()
        cert = _certificate(subject, key, issuer, usage, sans)
        files[f"{file_name}.crt"] = cert.public_bytes(serialization.Encoding.PEM)
        files[f"{file_name}.key"] = _key_pem(key)
        return cert, key

    ca = issue("ca", _name("backlot-test-ca"), None)
    issue(
        "apiserver",
        _name("kube-apiserver"),
        ca,
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.IPAddress(ipaddress.ip_address(HOST)),
            x509.IPAddress(ipaddress.ip_address(SERVICE_IP)),
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.DNSName("kubernetes.default.svc.cluster.local"),
        ],
    )
    for client in _CLIENTS:
        issue(
            client.file_name,
            _name(client.user, client.groups),
            ca,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        )
    # The aggregation layer: the apiserver proves itself to extension API servers with this
    # pair, and they trust the user it names in request headers.
    front_proxy_ca = issue("front-proxy-ca", _name("backlot-test-front-proxy-ca"), None)
    issue(
        "front-proxy-client",
        _name("front-proxy-client"),
        front_proxy_ca,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    sa_key = _new_key()
    files["sa.key"] = _key_pem(sa_key)
    files["sa.pub"] = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    # Written into a scratch dir and renamed, so an interrupted run never leaves a CA whose
    # certificates are missing.
    scratch = paths.pki.with_name("pki.new")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700, parents=True)
    for file_name, data in files.items():
        _write_private(scratch / file_name, data)
    (scratch / "complete").write_text(f"{PKI_LAYOUT}\n")
    shutil.rmtree(paths.pki, ignore_errors=True)
    scratch.rename(paths.pki)
    return True


def _write_kubeconfigs(paths: _Paths, server: str) -> None:
    """Written on every start, so a changed apiserver port reaches every client."""

    def data(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    ca = data(paths.cert("ca"))
    for client in _CLIENTS:
        text = f"""\
apiVersion: v1
kind: Config
clusters:
- name: backlot-test
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {client.user}
  user:
    client-certificate-data: {data(paths.cert(client.file_name))}
    client-key-data: {data(paths.key(client.file_name))}
contexts:
- name: backlot-test
  context:
    cluster: backlot-test
    user: {client.user}
current-context: backlot-test
"""
        _write_private(paths.kubeconfig(client.file_name), text.encode())


# --- talking to the processes -----------------------------------------------------------


def _admin_context(paths: _Paths) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(paths.cert("ca")))
    context.load_cert_chain(str(paths.cert("admin")), str(paths.key("admin")))
    return context


def _api(
    paths: _Paths,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One request to the apiserver as the admin user; raises OSError if it does not answer."""
    connection = http.client.HTTPSConnection(
        HOST, _ports().apiserver, context=_admin_context(paths), timeout=timeout
    )
    headers = {"Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return response.status, parsed


def _probe(port: int, path: str, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """GET on loopback, never through an HTTP proxy; (0, b"") when nothing answers."""
    connection = (
        http.client.HTTPSConnection(HOST, port, context=context, timeout=3)
        if context is not None
        else http.client.HTTPConnection(HOST, port, timeout=3)
    )
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        connection.close()


def _etcd_healthy() -> bool:
    status, body = _probe(_ports().etcd, "/health")
    try:
        return status == 200 and json.loads(body).get("health") == "true"
    except ValueError:
        return False


def _apiserver_healthy(paths: _Paths) -> bool:
    if not paths.cert("admin").is_file():
        return False
    status, _ = _probe(_ports().apiserver, "/readyz", _admin_context(paths))
    return status == 200


def _https_healthz(port: int) -> bool:
    # These serve /healthz over a self-signed certificate they make at start-up; the probe
    # only asks whether our process answers on loopback, so it does not verify it.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return _probe(port, "/healthz", context)[0] == 200


def _kwok_healthy() -> bool:
    return _probe(_ports().kwok, "/healthz")[0] == 200


# --- processes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Component:
    name: str
    binary: Path
    args: list[str]
    port: int
    port_variable: str
    healthy: Callable[[], bool]
    timeout: float
    env: dict[str, str] = field(default_factory=dict)


def _components(paths: _Paths, binaries: dict[str, Path]) -> list[_Component]:
    ports = _ports()
    peer = f"http://{HOST}:{ports.etcd_peer}"

    def kubeconfig_args(name: str) -> list[str]:
        kubeconfig = paths.kubeconfig(name)
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
        ]

    return [
        _Component(
            name="etcd",
            binary=binaries["etcd"],
            args=[
                "--name=backlot-test",
                f"--data-dir={paths.etcd_data}",
                f"--listen-client-urls=http://{HOST}:{ports.etcd}",
                f"--advertise-client-urls=http://{HOST}:{ports.etcd}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=backlot-test={peer}",
                # Throwaway test data: durability is worthless, speed is not.
                "--unsafe-no-fsync",
            ],
            port=ports.etcd,
            port_variable="BACKLOT_TEST_ETCD_PORT",
            healthy=_etcd_healthy,
            timeout=30,
        ),
        _Component(
            name="kube-apiserver",
            binary=binaries["kube-apiserver"],
            args=[
                f"--etcd-servers=http://{HOST}:{ports.etcd}",
                "--etcd-prefix=/registry",
                f"--bind-address={HOST}",
                f"--secure-port={ports.apiserver}",
                f"--tls-cert-file={paths.cert('apiserver')}",
                f"--tls-private-key-file={paths.key('apiserver')}",
                f"--client-ca-file={paths.cert('ca')}",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={paths.pki / 'sa.pub'}",
                f"--service-account-signing-key-file={paths.pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--requestheader-client-ca-file={paths.cert('front-proxy-ca')}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={paths.cert('front-proxy-client')}",
                f"--proxy-client-key-file={paths.key('front-proxy-client')}",
                "--authorization-mode=Node,RBAC",
                # Added to the default set (which already holds PodSecurity, ServiceAccount,
                # NamespaceLifecycle, LimitRanger, ResourceQuota, the webhooks, ...).
                "--enable-admission-plugins=NodeRestriction",
                # Privileged pods are legal where PodSecurity allows them, as in a real cluster.
                "--allow-privileged=true",
                "--profiling=false",
            ],
            port=ports.apiserver,
            port_variable="BACKLOT_TEST_APISERVER_PORT",
            healthy=lambda: _apiserver_healthy(paths),
            timeout=90,
        ),
        _Component(
            name="kube-controller-manager",
            binary=binaries["kube-controller-manager"],
            args=[
                *kubeconfig_args("kube-controller-manager"),
                f"--bind-address={HOST}",
                f"--secure-port={ports.controller_manager}",
                f"--service-account-private-key-file={paths.pki / 'sa.key'}",
                f"--root-ca-file={paths.cert('ca')}",
                f"--cluster-signing-cert-file={paths.cert('ca')}",
                f"--cluster-signing-key-file={paths.key('ca')}",
                "--use-service-account-credentials=true",
                # Every default-on controller: deployment, replicaset, namespace (deletion),
                # garbage-collector, serviceaccount, serviceaccount-token, node-lifecycle, ...
                "--controllers=*",
                # One instance: leader election would only delay a restart by a lease period.
                "--leader-elect=false",
                "--profiling=false",
                # kwok's heartbeats can lag on a loaded 2-core machine; a node marked NotReady
                # would mark its pods unready for good (kwok does not restore them). The
                # tests never exercise node failure, so detection is made very slow.
                "--node-monitor-grace-period=10m",
            ],
            port=ports.controller_manager,
            port_variable="BACKLOT_TEST_KCM_PORT",
            healthy=lambda: _https_healthz(ports.controller_manager),
            timeout=60,
        ),
        _Component(
            name="kube-scheduler",
            binary=binaries["kube-scheduler"],
            args=[
                *kubeconfig_args("kube-scheduler"),
                f"--bind-address={HOST}",
                f"--secure-port={ports.scheduler}",
                "--leader-elect=false",
                "--profiling=false",
            ],
            port=ports.scheduler,
            port_variable="BACKLOT_TEST_SCHEDULER_PORT",
            healthy=lambda: _https_healthz(ports.scheduler),
            timeout=60,
        ),
        _Component(
            name="kwok",
            binary=binaries["kwok"],
            args=[
                f"--kubeconfig={paths.kubeconfig('kwok')}",
                f"--config={_kwok_stages(paths)}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector="
                f"{KWOK_NODE_ANNOTATION[0]}={KWOK_NODE_ANNOTATION[1]}",
                "--manage-nodes-with-label-selector=",
                "--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom",
                "--disregard-status-with-label-selector=",
                f"--cidr={POD_CIDR}",
                f"--node-ip={NODE_IP}",
                f"--server-address={HOST}:{ports.kwok}",
                # Heartbeat through node Leases, as kubelets do (cheap, and what the node
                # lifecycle controller watches first).
                "--node-lease-duration-seconds=40",
            ],
            port=ports.kwok,
            port_variable="BACKLOT_TEST_KWOK_PORT",
            healthy=_kwok_healthy,
            timeout=60,
            # kwok loads ~/.kwok/kwok.yaml when it exists; a private HOME keeps a developer's
            # own kwok configuration out of the tests.
            env={"HOME": str(paths.kwok_home)},
        ),
    ]


def _kwok_stages(paths: _Paths) -> Path:
    """The stages file as kwok reads it: a copy named by its content, so a kwok started with
    older stages is recognised (see ``_refresh_kwok``) and a checkout's edits never reach a
    running kwok behind its back."""
    content = KWOK_STAGES_FILE.read_bytes()
    digest = hashlib.sha256(content).hexdigest()[:12]
    target = paths.kwok_home / f"stages-{digest}.yaml"
    if not target.is_file():
        paths.kwok_home.mkdir(parents=True, exist_ok=True)
        _write_private(target, content)
    return target


def _kwok_argv(paths: _Paths) -> list[str]:
    pid = _running_pid(paths, "kwok")
    if pid is None:
        return []
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except (OSError, UnicodeDecodeError):
        return []


def _refresh_kwok(paths: _Paths, components: Sequence[_Component]) -> None:
    """Restart only kwok when it runs with other stages than this checkout's.

    The rest of the cluster, and every object in it, is left alone: pods kwok already made
    Ready stay Ready, and the fake nodes' leases outlast the restart.
    """
    kwok = next(c for c in components if c.name == "kwok")
    argv = _kwok_argv(paths)
    if not argv:
        return
    wanted = next(a for a in kwok.args if a.startswith("--config="))
    if wanted in argv:
        return
    _terminate(paths, "kwok")
    _start(paths, kwok)


def _pid_file(paths: _Paths, name: str) -> Path:
    return paths.run / f"{name}.pid"


def _reap(pid: int) -> None:
    # Processes started by this interpreter are its children: collect them once they exit,
    # so they do not linger as zombies that still look alive.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _running_pid(paths: _Paths, name: str) -> int | None:
    """The pid of our running `name` process, or None (a recycled pid is not ours)."""
    try:
        pid = int(_pid_file(paths, name).read_text().strip())
    except (OSError, ValueError):
        return None
    _reap(pid)
    # The kernel reports the executable's resolved path (with " (deleted)" once a rebuild
    # replaced the file); argv[0] is the path it was started with, but reads empty for a
    # moment after exec. A zombie or a stranger's process matches neither.
    try:
        executable = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        executable = ""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except (OSError, UnicodeDecodeError):
        argv0 = ""
    ours = executable.startswith(f"{paths.bin.resolve() / name}-") or argv0.startswith(
        f"{paths.bin / name}-"
    )
    return pid if ours else None


def _child_running(pid: int) -> bool:
    try:
        exited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return exited == 0


def _terminate(paths: _Paths, name: str) -> bool:
    pid = _running_pid(paths, name)
    if pid is None:
        _pid_file(paths, name).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _running_pid(paths, name) is not None:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + STOP_TIMEOUT
        time.sleep(0.1)
    _pid_file(paths, name).unlink(missing_ok=True)
    return True


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _rotate_log(log: Path) -> None:
    if log.is_file() and log.stat().st_size > 0:
        log.replace(log.with_name(log.name + ".1"))


def _spawn(paths: _Paths, component: _Component) -> int:
    log = paths.logs / f"{component.name}.log"
    _rotate_log(log)
    env = {**os.environ, **component.env}
    # posix_spawn with setsid: the process outlives this interpreter (the cluster is shared
    # between test runs) and a Ctrl-C in the terminal does not reach it.
    pid = os.posix_spawn(
        str(component.binary),
        [str(component.binary), *component.args],
        env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    _pid_file(paths, component.name).write_text(f"{pid}\n")
    return pid


def _wait_until(
    ready: Callable[[], bool],
    failure: str,
    log: Path,
    timeout: float,
    alive: Callable[[], bool] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if alive is not None and not alive():
            raise ClusterUnavailable(f"{failure}: the process exited\n{_log_tail(log)}")
        if time.monotonic() > deadline:
            raise ClusterUnavailable(f"{failure} within {timeout:.0f}s\n{_log_tail(log)}")
        time.sleep(0.25)


def _start(paths: _Paths, component: _Component) -> None:
    if component.healthy():
        return
    # Ours but not answering (hung, or half-started before a crash): start it afresh.
    _terminate(paths, component.name)
    if not _port_is_free(component.port):
        raise ClusterUnavailable(
            f"{HOST}:{component.port} is taken by another process, so {component.name} cannot "
            f"start there: stop that process or set {component.port_variable} to a free port"
        )
    pid = _spawn(paths, component)
    _wait_until(
        component.healthy,
        f"{component.name} did not become healthy on {HOST}:{component.port}",
        paths.logs / f"{component.name}.log",
        component.timeout,
        alive=lambda: _child_running(pid),
    )


# --- fake nodes ------------------------------------------------------------------------------


def _node_manifest(name: str) -> dict[str, Any]:
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                KWOK_NODE_ANNOTATION[0]: KWOK_NODE_ANNOTATION[1],
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                "type": "kwok",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
            },
        },
        "spec": {"taints": [KWOK_TAINT]},
        "status": {"allocatable": resources, "capacity": resources},
    }


def _ensure_nodes(paths: _Paths) -> None:
    for name in NODE_NAMES:
        try:
            status, body = _api(paths, "POST", "/api/v1/nodes", _node_manifest(name))
        except (OSError, http.client.HTTPException) as error:
            raise ClusterUnavailable(f"creating the fake node {name} failed: {error}") from None
        if status not in (201, 409):
            raise ClusterUnavailable(f"creating the fake node {name} failed ({status}): {body}")


def _nodes_ready(paths: _Paths) -> bool:
    try:
        status, body = _api(paths, "GET", "/api/v1/nodes?labelSelector=type%3Dkwok")
    except (OSError, http.client.HTTPException):
        return False
    if status != 200:
        return False
    ready = {
        item["metadata"]["name"]
        for item in body.get("items", [])
        for condition in item.get("status", {}).get("conditions", [])
        if condition.get("type") == "Ready" and condition.get("status") == "True"
    }
    return ready >= set(NODE_NAMES)


def _default_service_account_exists(paths: _Paths) -> bool:
    try:
        status, _ = _api(paths, "GET", "/api/v1/namespaces/default/serviceaccounts/default")
    except (OSError, http.client.HTTPException):
        return False
    return status == 200


# --- the public API --------------------------------------------------------------------------


def _cluster_ready(paths: _Paths, components: Sequence[_Component]) -> bool:
    return all(component.healthy() for component in components) and _nodes_ready(paths)


def ensure_cluster() -> ClusterInfo:
    """Start the test cluster unless it already answers; return how to reach it."""
    paths = _paths()
    binaries = _require_binaries(paths)
    info = _info(paths)
    components = _components(paths, binaries)
    if paths.cert("admin").is_file() and _cluster_ready(paths, components):
        if _kwok_stages(paths).name in " ".join(_kwok_argv(paths)):
            return info
        with _locked(paths.lock):
            _refresh_kwok(paths, components)
        return info
    with _locked(paths.lock):
        if paths.cert("admin").is_file() and _cluster_ready(paths, components):
            _refresh_kwok(paths, components)
            return info
        for directory in (paths.logs, paths.run, paths.kwok_home):
            directory.mkdir(parents=True, exist_ok=True)
        paths.etcd_data.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _ensure_pki(paths):
            # Whatever still runs trusts the previous CA.
            _stop_all(paths)
        _write_kubeconfigs(paths, info.server)
        for component in components:
            _start(paths, component)
        _ensure_nodes(paths)
        _wait_until(
            lambda: _nodes_ready(paths),
            f"kwok did not mark the fake nodes {', '.join(NODE_NAMES)} Ready",
            paths.logs / "kwok.log",
            60,
        )
        # The ServiceAccount controller making `default` shows the controllers really run;
        # without it no pod can be admitted in a new namespace.
        _wait_until(
            lambda: _default_service_account_exists(paths),
            "kube-controller-manager did not create the `default` ServiceAccount",
            paths.logs / "kube-controller-manager.log",
            60,
        )
    return info


def stop_cluster() -> list[str]:
    """Stop every cluster process this module started; return the names of those stopped.

    Certificates and etcd's data are kept, so the next start reuses them.
    """
    paths = _paths()
    if not paths.run.is_dir():
        return []
    with _locked(paths.lock):
        return _stop_all(paths)


def _stop_all(paths: _Paths) -> list[str]:
    names = ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
    return [name for name in names if _terminate(paths, name)]


def _status() -> int:
    paths = _paths()
    try:
        binaries = _binaries(paths)
        components = _components(paths, binaries)
    except ClusterUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    all_healthy = True
    for component in components:
        pid = _running_pid(paths, component.name)
        healthy = component.healthy()
        all_healthy = all_healthy and healthy
        state = "healthy" if healthy else ("running, not healthy" if pid else "stopped")
        owner = f"pid {pid}" if pid else "no pid of ours"
        print(f"{component.name:<24} {state:<21} {HOST}:{component.port} ({owner})")
    nodes = _nodes_ready(paths) if all_healthy else False
    print(f"{'fake nodes':<24} {'Ready' if nodes else 'not Ready'}")
    missing = [path.name for path in binaries.values() if not path.is_file()]
    if missing:
        print(f"binaries missing: {', '.join(missing)}: {BUILD_HINT}")
    print(f"kubeconfig: {paths.kubeconfig('admin')}")
    print(f"logs: {paths.logs}")
    return 0 if all_healthy and nodes else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.cluster.cluster", description="The Kubernetes test cluster."
    )
    parser.add_argument("command", choices=["up", "down", "status", "kubeconfig"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            started = time.monotonic()
            info = ensure_cluster()
            print(f"Kubernetes {info.kubernetes_version} test cluster up at {info.server}")
            print(f"  kubeconfig: {info.kubeconfig}")
            print(f"  kubectl:    {info.kubectl}")
            print(f"  ready in {time.monotonic() - started:.1f}s")
        elif args.command == "down":
            stopped = stop_cluster()
            print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        elif args.command == "status":
            return _status()
        else:
            kubeconfig = _paths().kubeconfig("admin")
            if not kubeconfig.is_file():
                print(
                    f"{kubeconfig} does not exist yet: run `python -m infra.cluster.cluster up`",
                    file=sys.stderr,
                )
                return 1
            print(kubeconfig)
    except ClusterUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
