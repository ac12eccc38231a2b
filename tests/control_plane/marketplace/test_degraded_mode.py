"""The runtime's degraded mode, on a plugin host fed tokens signed with the control plane's keys.

The clock is the host's ``now`` argument, so hours pass in a test; the keys come straight
from the control plane's database rather than over HTTP (the HTTP path is covered by the
live tests).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.settings import Settings
from control_plane.identity import signing
from control_plane.tenants.models import Tenant
from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.plugins.entitlements import EntitlementVerifier
from tenant_runtime.plugins.host import PluginHost
from tests.control_plane.factories import make_tenant

pytestmark = [pytest.mark.marketplace, pytest.mark.integration]

GRACE = 600
INSTALLED = [
    {"id": "cicd", "version": "1.0.0", "config": {"webhook_secret": "s" * 32}},
    {"id": "scorecards", "version": "1.0.0", "config": {}},
]


@pytest.fixture
def tenant(db_session: Session) -> Tenant:
    return make_tenant(db_session)[2]


@pytest.fixture
def host(db_session: Session, settings: Settings, tenant: Tenant, tmp_path: Path) -> PluginHost:
    runtime = RuntimeSettings(
        tenant_id=str(tenant.id),
        tenant_slug=tenant.slug,
        organization_name="Initech",
        data_dir=tmp_path,
        entitlement_grace_seconds=GRACE,
    )
    verifier = EntitlementVerifier(
        str(tenant.id), fetch=lambda _uri: signing.jwks(db_session, settings=settings)
    )
    return PluginHost(
        runtime,
        sessionmaker(bind=create_engine("sqlite://")),
        verifier=verifier,
        discovery=lambda: {"issuer": settings.resolved_public_url, "jwks_uri": "jwks"},
    )


def _token(db_session: Session, settings: Settings, tenant: Tenant, exp: int) -> str:
    claims: dict[str, Any] = {
        "iss": settings.resolved_public_url,
        "aud": f"backlot-runtime:{tenant.id}",
        "sub": str(tenant.id),
        "typ": "entitlements",
        "plan": "enterprise",
        "plugins": [
            {"id": "cicd", "version": "1.0.0", "tier": "free"},
            {"id": "scorecards", "version": "1.0.0", "tier": "premium"},
        ],
        "iat": int(time.time()),
        "exp": exp,
        "jti": "t1",
    }
    return signing.sign(db_session, claims, settings=settings)


def _running(host: PluginHost) -> list[str]:
    return sorted(p.spec.id for p in host.active())


def test_premium_plugins_run_through_the_grace_period_then_stop_and_free_ones_stay(
    host: PluginHost, db_session: Session, settings: Settings, tenant: Tenant
) -> None:
    expires = int(time.time()) + 3600
    host.on_section(
        {"entitlements": _token(db_session, settings, tenant, expires), "installed": INSTALLED}
    )
    entitled = _running(host)

    host.reconcile(now=expires + GRACE - 1)
    in_grace = (host.mode, _running(host))
    host.reconcile(now=expires + GRACE + 1)
    after = (host.mode, _running(host))

    assert entitled == ["cicd", "scorecards"]
    assert in_grace == ("grace", ["cicd", "scorecards"])
    assert after == ("degraded", ["cicd"])


def test_a_refused_token_does_not_replace_the_last_valid_one(
    host: PluginHost, db_session: Session, settings: Settings, tenant: Tenant
) -> None:
    host.on_section(
        {
            "entitlements": _token(db_session, settings, tenant, int(time.time()) + 3600),
            "installed": INSTALLED,
        }
    )
    host.on_section({"entitlements": "not.a.token", "installed": INSTALLED})

    assert _running(host) == ["cicd", "scorecards"]
    assert host.last_refusal == "the token is not a compact JWS"
