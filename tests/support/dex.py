"""Dex, a real OpenID provider, started on a free loopback port for the tests.

The binary is built from a pinned commit by `infra/dex/build.sh` (cached under
`~/.cache/backlot/dex/<release>/`); `dex_binary()` builds it when it is missing.

Two connectors, both Dex's own:
- the password database (`local`): Dex's login form with static users. Dex's static
  passwords carry no groups (dexidp/dex#1080), so those users log in without any.
- `authproxy` (`proxy`): Dex trusts an authenticating front proxy's headers
  (`X-Remote-User`, `X-Remote-Group`). Tests play that proxy with `proxy_headers()`, which
  is how users with groups log in: Dex then puts the groups in the ID token's `groups` claim.
  The proxy adds its headers to every request it forwards, so a test client sends them on
  each request to Dex (an `httpx.Client(headers=...)`, or Playwright's extra headers).
With two connectors Dex first shows a chooser; `connector_link()` finds a connector's link.
"""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import httpx

DEX_RELEASE = "v2.41.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "infra" / "dex" / "build.sh"
# bcrypt("password"), the hash Dex's own example configuration uses.
PASSWORD = "password"
PASSWORD_HASH = "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W"
LOCAL_CONNECTOR = "local"
PROXY_CONNECTOR = "proxy"
START_TIMEOUT_SECONDS = 20.0


class DexUnavailable(RuntimeError):
    """Dex could not be built or started; the message says how to fix it."""


@dataclass(frozen=True)
class DexClient:
    id: str
    secret: str
    redirect_uris: Sequence[str]
    name: str = "Backlot"


@dataclass(frozen=True)
class DexUser:
    """A user of Dex's password database; the password is always `PASSWORD`."""

    email: str
    username: str
    user_id: str


@dataclass
class DexServer:
    issuer: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    clients: list[DexClient] = field(default_factory=list)

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def cache_dir() -> Path:
    return Path(os.environ.get("BACKLOT_CACHE_DIR", Path.home() / ".cache" / "backlot"))


def dex_binary() -> Path:
    """The pinned Dex binary, built through the Go module proxy when it is missing."""
    binary = cache_dir() / "dex" / DEX_RELEASE / "dex"
    if binary.exists():
        return binary
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not binary.exists():
        raise DexUnavailable(
            f"building Dex failed (run `make dex-build` to see why; it needs Go >= 1.22 and "
            f"gcc):\n{result.stderr[-2000:]}"
        )
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dex_config(
    port: int,
    clients: Sequence[DexClient],
    users: Sequence[DexUser],
    *,
    id_token_ttl: str = "10m",
) -> dict[str, object]:
    issuer = f"http://127.0.0.1:{port}/dex"
    return {
        "issuer": issuer,
        "storage": {"type": "memory"},
        "web": {"http": f"127.0.0.1:{port}"},
        "logger": {"level": "debug", "format": "text"},
        "oauth2": {"skipApprovalScreen": True, "responseTypes": ["code"]},
        "expiry": {"idTokens": id_token_ttl, "authRequests": "10m"},
        "staticClients": [
            {
                "id": client.id,
                "secret": client.secret,
                "name": client.name,
                "redirectURIs": list(client.redirect_uris),
            }
            for client in clients
        ],
        "enablePasswordDB": True,
        "staticPasswords": [
            {
                "email": user.email,
                "hash": PASSWORD_HASH,
                "username": user.username,
                "userID": user.user_id,
            }
            for user in users
        ],
        "connectors": [
            {"type": "authproxy", "id": PROXY_CONNECTOR, "name": "Group directory", "config": {}}
        ],
    }


@contextmanager
def run_dex(
    directory: Path,
    clients: Sequence[DexClient],
    users: Sequence[DexUser] = (),
    *,
    id_token_ttl: str = "10m",
) -> Iterator[DexServer]:
    """Start Dex with these clients and users; stop it on exit."""
    binary = dex_binary()
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = directory / "dex.json"
    # Dex reads YAML, and JSON is YAML.
    config_path.write_text(
        json.dumps(dex_config(port, clients, users, id_token_ttl=id_token_ttl), indent=2)
    )
    log_path = directory / "dex.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(binary), "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT
        )
    server = DexServer(
        issuer=f"http://127.0.0.1:{port}/dex",
        port=port,
        process=process,
        log_path=log_path,
        clients=list(clients),
    )
    try:
        _wait_until_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(server: DexServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise DexUnavailable(f"Dex exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.discovery_url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise DexUnavailable(f"Dex did not answer within {START_TIMEOUT_SECONDS}s:\n{server.log()}")


def proxy_headers(email: str, groups: Sequence[str]) -> dict[str, str]:
    """The headers an authenticating proxy in front of Dex would add for this user."""
    return {"X-Remote-User": email, "X-Remote-Group": ",".join(groups)}


def connector_link(chooser_html: str, base_url: str, connector_id: str) -> str:
    """The URL of one connector's button on Dex's connector chooser page."""
    for href in re.findall(r'href="([^"]+)"', chooser_html):
        target = html.unescape(href)
        if f"/auth/{connector_id}?" in target or target.endswith(f"/auth/{connector_id}"):
            return urljoin(base_url, target)
    raise AssertionError(f"Dex's chooser offers no connector {connector_id!r}")


def login_form_action(login_html: str, base_url: str) -> str:
    """Where Dex's password form posts to."""
    match = re.search(r'<form[^>]*action="([^"]+)"', login_html)
    if match is None:
        raise AssertionError("Dex's page has no login form")
    return urljoin(base_url, html.unescape(match.group(1)))
