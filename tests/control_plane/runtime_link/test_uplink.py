"""The runtime's uplink against the real control plane served over HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing.models import UsageReport
from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.runtime_link import service
from control_plane.tenants.models import Tenant
from tenant_runtime.auth.models import LoginDay, User
from tenant_runtime.auth.usage import UsageReporter
from tenant_runtime.core.database import create_database_engine
from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.migrate import migrate
from tenant_runtime.uplink import Uplink, UplinkError
from tenant_runtime.uplink.client import signature
from tests.control_plane.factories import make_tenant
from tests.support.servers import free_port, serving

pytestmark = pytest.mark.integration


@pytest.fixture
def control_plane_url(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[str]:
    app = create_app(settings, sessions=sessions)
    with serving(app, free_port(), what="the control plane", timeout_seconds=10) as url:
        yield url


@pytest.fixture
def tenant(sessions: sessionmaker[Session]) -> Tenant:
    with sessions() as session:
        _, _, tenant = make_tenant(session)
        session.commit()
        return tenant


def _uplink(url: str, tenant_id: str, token: str) -> Uplink:
    return Uplink(
        RuntimeSettings(
            tenant_id=tenant_id,
            tenant_slug="acme",
            organization_name="Acme",
            control_plane_url=url,
            control_plane_token=SecretStr(token),
        )
    )


def test_the_runtime_reads_its_config_document(
    control_plane_url: str, settings: Settings, tenant: Tenant
) -> None:
    uplink = _uplink(control_plane_url, str(tenant.id), service.runtime_token(settings, tenant.id))
    document = uplink.fetch_config()
    assert (document["tenant_id"], document["slug"], document["sso"]) == (
        str(tenant.id),
        tenant.slug,
        None,
    )
    assert document["jwks_uri"] == f"{settings.resolved_public_url}/.well-known/jwks.json"


def test_subscribers_hear_a_section_once_and_again_when_it_changes(
    control_plane_url: str, settings: Settings, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    value: dict[str, Any] = {"version": 1}
    monkeypatch.setitem(service.CONFIG_SECTIONS, "sso", lambda _s, _t: dict(value))
    uplink = _uplink(control_plane_url, str(tenant.id), service.runtime_token(settings, tenant.id))
    heard: list[Any] = []
    uplink.subscribe("sso", heard.append)

    assert uplink.refresh_now()
    assert uplink.refresh_now()
    value["version"] = 2
    assert uplink.refresh_now()
    assert heard == [{"version": 1}, {"version": 2}]


def test_a_token_for_another_tenant_is_refused(
    control_plane_url: str, settings: Settings, tenant: Tenant, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        _, _, other = make_tenant(session)
        session.commit()
    uplink = _uplink(control_plane_url, str(tenant.id), service.runtime_token(settings, other.id))
    with pytest.raises(UplinkError, match="answered 401"):
        uplink.fetch_config()


def test_an_unreachable_control_plane_keeps_the_last_document(
    control_plane_url: str, settings: Settings, tenant: Tenant
) -> None:
    uplink = _uplink(
        "http://127.0.0.1:9", str(tenant.id), service.runtime_token(settings, tenant.id)
    )
    heard: list[Any] = []
    uplink.subscribe("sso", heard.append)
    assert uplink.refresh_now() is False
    assert (heard, uplink.section("sso")) == ([], None)


def test_a_standalone_runtime_hears_none() -> None:
    uplink = Uplink(RuntimeSettings(tenant_id="t", tenant_slug="t", organization_name="T"))
    heard: list[Any] = []
    uplink.subscribe("sso", heard.append)
    assert heard == [None]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(
        service, "USAGE_RECORDER", lambda _session, _tenant, report: reports.append(report)
    )
    return reports


def test_a_signed_usage_report_is_recorded(
    control_plane_url: str, settings: Settings, tenant: Tenant, recorded: list[dict[str, Any]]
) -> None:
    uplink = _uplink(control_plane_url, str(tenant.id), service.runtime_token(settings, tenant.id))
    uplink.report_usage("2026-11", active_users=7, provisioned_users=9)
    assert [(r["period"], r["active_users"], r["provisioned_users"]) for r in recorded] == [
        ("2026-11", 7, 9)
    ]


def _post_usage(
    url: str, settings: Settings, tenant: Tenant, body: bytes, sig: str
) -> httpx.Response:
    return httpx.post(
        f"{url}/internal/v1/runtime/usage",
        content=body,
        headers={
            "authorization": f"Bearer {service.runtime_token(settings, tenant.id)}",
            "x-backlot-tenant": str(tenant.id),
            "x-backlot-signature": sig,
            "content-type": "application/json",
        },
    )


REPORT = (
    b'{"period":"2026-11","active_users":3,"provisioned_users":3,'
    b'"reported_at":"2026-11-24T10:00:00+00:00"}'
)


def test_a_tampered_usage_report_is_refused(
    control_plane_url: str, settings: Settings, tenant: Tenant, recorded: list[dict[str, Any]]
) -> None:
    token = service.runtime_token(settings, tenant.id)
    sig = signature(token, REPORT)
    response = _post_usage(
        control_plane_url,
        settings,
        tenant,
        REPORT.replace(b'"active_users":3', b'"active_users":1'),
        sig,
    )
    assert (response.status_code, recorded) == (401, [])
    assert "does not match" in response.json()["detail"]


def test_a_replayed_old_usage_report_is_refused(
    control_plane_url: str, settings: Settings, tenant: Tenant, recorded: list[dict[str, Any]]
) -> None:
    token = service.runtime_token(settings, tenant.id)
    old = signature(token, REPORT, timestamp=int(time.time()) - 3600)
    response = _post_usage(control_plane_url, settings, tenant, REPORT, old)
    assert (response.status_code, recorded) == (401, [])
    assert "too old" in response.json()["detail"]


def test_a_malformed_usage_report_says_what_is_wrong(
    control_plane_url: str, settings: Settings, tenant: Tenant, recorded: list[dict[str, Any]]
) -> None:
    body = REPORT.replace(b'"period":"2026-11"', b'"period":"November"')
    token = service.runtime_token(settings, tenant.id)
    response = _post_usage(control_plane_url, settings, tenant, body, signature(token, body))
    assert (response.status_code, recorded) == (400, [])
    assert "YYYY-MM" in response.json()["detail"]


def test_a_runtime_reports_its_seats_into_the_billing_ledger(
    control_plane_url: str,
    settings: Settings,
    tenant: Tenant,
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    runtime = RuntimeSettings(
        tenant_id=str(tenant.id),
        tenant_slug="acme",
        organization_name="Acme",
        database_url=f"sqlite:///{tmp_path / 'runtime.db'}",
        data_dir=tmp_path,
    )
    migrate(runtime)
    engine = create_database_engine(runtime.database_url)
    now = dt.datetime.now(dt.UTC)
    with Session(engine) as runtime_session:
        for number, active in enumerate((True, True, False)):
            user = User(
                id=f"user-{number}",
                email=f"u{number}@acme.example",
                name="",
                role="viewer",
                active=active,
                source="sso",
                created_at=now,
                updated_at=now,
            )
            runtime_session.add(user)
            runtime_session.flush()
            runtime_session.add(LoginDay(user_id=user.id, day=now.date()))
        runtime_session.commit()
    uplink = _uplink(control_plane_url, str(tenant.id), service.runtime_token(settings, tenant.id))

    UsageReporter(uplink, sessionmaker(engine), 900).report_now()
    engine.dispose()

    with sessions() as session:
        ledger = session.scalars(select(UsageReport).where(UsageReport.tenant_id == tenant.id))
        assert [(r.period, r.active_users, r.provisioned_users) for r in ledger] == [
            (now.strftime("%Y-%m"), 3, 2)
        ], "three users signed in this month; the deactivated one holds no seat"


def test_a_usage_report_with_negative_counts_is_refused(
    control_plane_url: str, settings: Settings, tenant: Tenant
) -> None:
    uplink = _uplink(control_plane_url, str(tenant.id), service.runtime_token(settings, tenant.id))
    with pytest.raises(UplinkError, match=r"answered 400: .*user counts cannot be negative"):
        uplink.report_usage("2026-11", active_users=-1, provisioned_users=2)
