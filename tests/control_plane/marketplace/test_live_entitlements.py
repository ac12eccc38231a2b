"""The runtime enforces entitlements itself: premium plugins need a valid, unexpired token."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.settings import Settings
from control_plane.identity import signing
from control_plane.marketplace import service as marketplace
from control_plane.runtime_link import service as runtime_link
from control_plane.tenants.models import Tenant
from tests.control_plane.marketplace.live import RuntimeProcess, run_runtime, wait_for

pytestmark = [pytest.mark.marketplace, pytest.mark.integration]

LIVE_TIMEOUT = 15
SCORECARDS_API = "/api/plugins/scorecards/teams"


def _claims(tenant: Tenant, settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": settings.resolved_public_url,
        "aud": f"backlot-runtime:{tenant.id}",
        "sub": str(tenant.id),
        "typ": "entitlements",
        "plan": "enterprise",
        "plugins": [{"id": "scorecards", "version": "1.0.0", "tier": "premium"}],
        "seat_limit": None,
        "features": [],
        "iat": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
        **overrides,
    }


def _serve_section(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    """The control plane hands out ``token`` with Scorecards installed."""
    section = {
        "entitlements": token,
        "installed": [{"id": "scorecards", "version": "1.0.0", "config": {}}],
    }
    monkeypatch.setitem(runtime_link.CONFIG_SECTIONS, "plugins", lambda _s, _t: section)


def _status(runtime: RuntimeProcess) -> dict[str, Any]:
    document: dict[str, Any] = runtime.get("/api/plugins/").json()
    return document


@pytest.fixture
def strict_runtime(
    tmp_path: Path, tenant: Tenant, control_plane: tuple[str, Settings]
) -> Iterator[RuntimeProcess]:
    """A runtime that allows no grace past a token's expiry."""
    url, settings = control_plane
    with run_runtime(
        tmp_path / "runtime", tenant, settings, url, BACKLOT_RUNTIME_ENTITLEMENT_GRACE_SECONDS="0"
    ) as process:
        yield process


def test_a_premium_plugin_installed_without_entitlement_does_not_run(
    runtime: RuntimeProcess,
    tenant: Tenant,
    control_plane: tuple[str, Settings],
    committed: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, settings = control_plane
    with committed() as session:
        token = signing.sign(
            session, _claims(tenant, settings, plan="free", plugins=[]), settings=settings
        )
        session.commit()
    _serve_section(monkeypatch, token)

    wait_for(
        lambda: any(p["id"] == "scorecards" for p in _status(runtime)["plugins"]),
        LIVE_TIMEOUT,
        runtime,
        "the runtime hearing of Scorecards",
    )
    scorecards = next(p for p in _status(runtime)["plugins"] if p["id"] == "scorecards")
    assert (scorecards["state"], scorecards["reason"]) == (
        "refused",
        "this portal is not entitled to it",
    )
    assert runtime.get(SCORECARDS_API).status_code == 404


def test_a_premium_plugin_goes_live_once_the_tenant_is_entitled(
    runtime: RuntimeProcess, tenant: Tenant, committed: sessionmaker[Session]
) -> None:
    with committed() as session:
        row = session.get(Tenant, tenant.id)
        assert row is not None
        row.plan = "enterprise"
        marketplace.install(
            session, row, marketplace.get_plugin(session, "scorecards"), actor="user:test"
        )
        session.commit()

    wait_for(
        lambda: runtime.get(SCORECARDS_API).status_code == 200,
        LIVE_TIMEOUT,
        runtime,
        "Scorecards answering",
    )
    teams = runtime.get(SCORECARDS_API).json()
    assert [t["team"] for t in teams] == ["platform-team"]


def test_a_forged_token_is_refused_by_the_runtime(
    runtime: RuntimeProcess,
    tenant: Tenant,
    control_plane: tuple[str, Settings],
    committed: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, settings = control_plane
    with committed() as session:
        real_kid = signing.active_key(session, settings).kid
        session.commit()
    # Signed by another key that claims the control plane's key id.
    impostor = OKPKey.generate_key("Ed25519", parameters={"kid": real_kid})
    forged = jwt.encode(
        {"alg": "EdDSA", "kid": real_kid}, _claims(tenant, settings), impostor, algorithms=["EdDSA"]
    )
    _serve_section(monkeypatch, forged)

    wait_for(
        lambda: (_status(runtime)["last_refusal"] or "").startswith("the token's signature"),
        LIVE_TIMEOUT,
        runtime,
        "the forged token refused",
    )
    assert runtime.get(SCORECARDS_API).status_code == 404


def test_an_expired_token_is_refused_by_the_runtime(
    strict_runtime: RuntimeProcess,
    tenant: Tenant,
    control_plane: tuple[str, Settings],
    committed: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, settings = control_plane
    past = int(time.time()) - 7200
    with committed() as session:
        expired = signing.sign(
            session, _claims(tenant, settings, iat=past, exp=past + 3600), settings=settings
        )
        session.commit()
    _serve_section(monkeypatch, expired)

    wait_for(
        lambda: "exp" in (_status(strict_runtime)["last_refusal"] or ""),
        LIVE_TIMEOUT,
        strict_runtime,
        "the expired token refused",
    )
    assert strict_runtime.get(SCORECARDS_API).status_code == 404
