"""Fixtures for sign-in: the control plane's signing keys, Dex, and a portal to log in to."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey
from litestar import Litestar
from litestar.testing import TestClient

from tenant_runtime.app import create_app
from tenant_runtime.core.settings import RuntimeSettings
from tests.support.dex import (
    DexClient,
    DexServer,
    DexUnavailable,
    DexUser,
    free_port,
    run_dex,
)

TENANT_ID = "3f2b9c1e-0d4a-4c55-9a61-7f1e2d3c4b5a"
OTHER_TENANT_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
CLIENT_ID = "backlot-portal"
CLIENT_SECRET = "portal-client-secret"
ALICE = DexUser(email="alice@example.com", username="alice", user_id="u-alice")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class StaticSite:
    """Files served over loopback HTTP."""

    root: Path
    url: str

    def put(self, name: str, document: object) -> str:
        (self.root / name).write_text(json.dumps(document))
        return f"{self.url}/{name}"


@pytest.fixture
def static_site(tmp_path: Path) -> Iterator[StaticSite]:
    root = tmp_path / "site"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield StaticSite(root=root, url=f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


@dataclass
class ControlPlaneKeys:
    """The control plane's Ed25519 signing key and its published JWKS.

    The control plane itself is another service; its JWKS document is served here as a
    static file over real HTTP, which is all the runtime reads from it.
    """

    issuer: str
    jwks_uri: str
    key: OKPKey
    site: StaticSite

    def ticket(self, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": f"backlot-runtime:{TENANT_ID}",
            "sub": str(uuid.uuid4()),
            "email": "owner@example.com",
            "name": "Olive Owner",
            "role": "admin",
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        }
        claims.update(overrides)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(
            {"alg": "EdDSA", "kid": self.key.kid}, claims, self.key, algorithms=["EdDSA"]
        )

    def rotate(self) -> None:
        """A new active key, published next to the old one (as the control plane does)."""
        old = self.key
        self.key = OKPKey.generate_key("Ed25519", parameters={"kid": uuid.uuid4().hex})
        self.site.put(
            "jwks.json", {"keys": [old.as_dict(private=False), self.key.as_dict(private=False)]}
        )


@pytest.fixture
def control_plane(static_site: StaticSite) -> ControlPlaneKeys:
    key = OKPKey.generate_key("Ed25519", parameters={"kid": uuid.uuid4().hex})
    jwks_uri = static_site.put("jwks.json", {"keys": [key.as_dict(private=False)]})
    return ControlPlaneKeys(
        issuer="https://console.backlot.test", jwks_uri=jwks_uri, key=key, site=static_site
    )


@pytest.fixture
def portal_port() -> int:
    return free_port()


@pytest.fixture
def runtime_settings(tmp_path: Path, portal_port: int) -> RuntimeSettings:
    return RuntimeSettings(
        tenant_id=TENANT_ID,
        tenant_slug="acme-rockets",
        organization_name="Acme Rockets",
        database_url=f"sqlite:///{tmp_path / 'db' / 'runtime.db'}",
        data_dir=tmp_path,
        public_url=f"http://127.0.0.1:{portal_port}",
    )


@pytest.fixture
def app(migrated_settings: RuntimeSettings, control_plane: ControlPlaneKeys) -> Litestar:
    app = create_app(migrated_settings)
    app.state.sso_state.set_issuer(control_plane.issuer)
    app.state.sso_state.set_jwks_uri(control_plane.jwks_uri)
    return app


@pytest.fixture
def portal(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def dex(tmp_path: Path, portal_port: int) -> Iterator[DexServer]:
    client = DexClient(
        id=CLIENT_ID,
        secret=CLIENT_SECRET,
        redirect_uris=[f"http://127.0.0.1:{portal_port}/auth/oidc/callback"],
    )
    try:
        with run_dex(tmp_path / "dex", [client], [ALICE]) as server:
            yield server
    except DexUnavailable as error:
        pytest.fail(f"Dex is needed (make dex-build): {error}", pytrace=False)


def sso_section(**overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "version": 1,
        "enabled": True,
        "enforced": False,
        "protocol": "oidc",
        "oidc": None,
        "saml": None,
        "role_mapping": [
            {"group": "portal-admins", "role": "admin"},
            {"group": "developers", "role": "member"},
        ],
        "default_role": "viewer",
        "scim_token_sha256": None,
        "draft": None,
    }
    section.update(overrides)
    return section


def oidc_section(dex: DexServer, **overrides: Any) -> dict[str, Any]:
    return sso_section(
        oidc={
            "issuer": dex.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["openid", "email", "profile", "groups"],
            "claims": {"email": "email", "name": "name", "groups": "groups"},
        },
        **overrides,
    )


@pytest.fixture
def configure_sso(app: Litestar) -> Callable[[dict[str, Any] | None], None]:
    return app.state.sso_state.set_sso  # type: ignore[no-any-return]
