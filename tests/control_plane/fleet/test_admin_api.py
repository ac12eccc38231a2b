"""Operator tokens and scopes, fleet views, actions and bulk actions, each audited."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from billing import seats
from billing.models import BillingAccount
from control_plane.audit import service as audit
from control_plane.audit.models import AuditEntry
from control_plane.fleet import releases
from control_plane.marketplace import service as marketplace
from control_plane.marketplace.seed import seed as seed_marketplace
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant
from tests.control_plane.factories import make_tenant
from tests.control_plane.fleet.conftest import Client, TokenMaker

pytestmark = [pytest.mark.fleet, pytest.mark.integration]


def _actions(db_session: Session, action: str) -> list[AuditEntry]:
    db_session.expire_all()
    return audit.entries(db_session, action=action)


def _tenants(db_session: Session, count: int) -> list[Tenant]:
    made = [make_tenant(db_session)[2] for _ in range(count)]
    db_session.commit()
    return made


def test_a_call_without_a_token_is_refused_and_audited(client: Client, db_session: Session) -> None:
    response = client.get("/admin/v1/tenants")
    assert response.status_code == 401
    denied = _actions(db_session, "admin.denied")
    assert [(e.actor, e.details["why"]) for e in denied] == [("anonymous", "no operator token")]


def test_an_unknown_token_is_refused(client: Client) -> None:
    response = client.get(
        "/admin/v1/tenants", headers={"Authorization": "Bearer blop_not-a-real-token"}
    )
    assert response.status_code == 401


def test_a_read_token_cannot_act(client: Client, db_session: Session, token: TokenMaker) -> None:
    tenant = _tenants(db_session, 1)[0]
    response = client.post(
        f"/admin/v1/tenants/{tenant.slug}/actions/suspend", headers=token("read"), json={}
    )
    assert (response.status_code, response.json()["detail"]) == (
        403,
        "this token lacks the 'operate' scope",
    )
    db_session.refresh(tenant)
    assert tenant.suspension_holds == []


def test_a_refused_action_is_audited(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    tenant = _tenants(db_session, 1)[0]
    client.post(f"/admin/v1/tenants/{tenant.slug}/actions/suspend", headers=token("read"))
    denied = _actions(db_session, "admin.denied")
    assert [(e.actor, e.details["path"]) for e in denied] == [
        ("operator:ops@vendor.example", f"/admin/v1/tenants/{tenant.slug}/actions/suspend")
    ]


def test_a_read_token_reads(client: Client, db_session: Session, token: TokenMaker) -> None:
    _tenants(db_session, 2)
    response = client.get("/admin/v1/tenants", headers=token("read"))
    assert (response.status_code, response.json()["total"]) == (200, 2)


def test_pinning_a_release_needs_the_release_scope(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    tenant = _tenants(db_session, 1)[0]
    response = client.post(
        f"/admin/v1/tenants/{tenant.slug}/actions/pin-release",
        headers=token("read", "operate"),
        json={"params": {"release": "0.1.0"}},
    )
    assert response.status_code == 403


def test_every_call_is_audited(client: Client, db_session: Session, token: TokenMaker) -> None:
    headers = token("read")
    client.get("/admin/v1/summary", headers=headers)
    client.get("/admin/v1/tenants", headers=headers)
    calls = _actions(db_session, "admin.call")
    assert sorted(e.details["path"] for e in calls) == ["/admin/v1/summary", "/admin/v1/tenants"]


def test_suspend_and_resume_hold_the_operators_suspension(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    tenant = _tenants(db_session, 1)[0]
    headers = token("operate")
    suspended = client.post(
        f"/admin/v1/tenants/{tenant.id}/actions/suspend",
        headers=headers,
        json={"params": {"reason": "abuse report 42"}},
    )
    assert suspended.status_code == 202
    db_session.refresh(tenant)
    assert (tenant.suspended, tenant.suspension_holds) == (True, ["operator"])
    client.post(f"/admin/v1/tenants/{tenant.id}/actions/resume", headers=headers)
    db_session.refresh(tenant)
    assert (tenant.suspended, tenant.suspension_holds) == (False, [])


def test_each_action_leaves_an_audit_entry(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    tenant = _tenants(db_session, 1)[0]
    releases.register(db_session, version="2.0.0", image="registry.example/rt:2.0.0", actor="t")
    db_session.commit()
    headers = token("operate", "release")
    steps = [
        ("suspend", {"reason": "why not"}),
        ("resume", {}),
        ("set-size-tier", {"size_tier": "medium"}),
        ("pin-release", {"release": "2.0.0"}),
        ("set-cohort", {"cohort": "early"}),
        ("reconcile", {}),
        ("delete", {"reason": "customer left"}),
    ]
    for name, params in steps:
        response = client.post(
            f"/admin/v1/tenants/{tenant.slug}/actions/{name}",
            headers=headers,
            json={"params": params},
        )
        assert response.status_code == 202, (name, response.text)
    entries = audit.entries(db_session, tenant_id=tenant.id)
    assert sorted((e.action, e.actor) for e in entries) == sorted(
        (f"tenant.{name}", "operator:ops@vendor.example") for name, _ in steps
    )


def test_an_action_the_lifecycle_refuses_is_a_conflict_and_not_audited(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    tenant = _tenants(db_session, 1)[0]
    response = client.post(
        f"/admin/v1/tenants/{tenant.slug}/actions/restore", headers=token("operate")
    )
    assert (response.status_code, response.json()["detail"]) == (
        409,
        "only a deleted portal can be restored; this one is pending",
    )
    assert _actions(db_session, "tenant.restore") == []


def test_an_unknown_size_tier_is_refused(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    tenant = _tenants(db_session, 1)[0]
    response = client.post(
        f"/admin/v1/tenants/{tenant.slug}/actions/set-size-tier",
        headers=token("operate"),
        json={"params": {"size_tier": "gigantic"}},
    )
    assert (response.status_code, response.json()["detail"]) == (
        422,
        "size_tier: one of small, medium, large",
    )


def _deleted(db_session: Session, tenant: Tenant, *, purge_in: dt.timedelta) -> None:
    tenant.state = TenantState.DELETED
    tenant.deletion_requested_at = dt.datetime.now(dt.UTC)
    tenant.purge_after = dt.datetime.now(dt.UTC) + purge_in
    db_session.commit()


def test_a_deleted_tenant_is_restored_within_retention(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    tenant = _tenants(db_session, 1)[0]
    _deleted(db_session, tenant, purge_in=dt.timedelta(days=3))
    response = client.post(
        f"/admin/v1/tenants/{tenant.slug}/actions/restore", headers=token("operate")
    )
    assert response.status_code == 202
    db_session.refresh(tenant)
    assert (tenant.state, tenant.deletion_requested_at, tenant.purge_after) == (
        TenantState.PROVISIONING,
        None,
        None,
    )


def test_a_tenant_past_retention_is_not_restored(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    tenant = _tenants(db_session, 1)[0]
    _deleted(db_session, tenant, purge_in=-dt.timedelta(minutes=1))
    response = client.post(
        f"/admin/v1/tenants/{tenant.slug}/actions/restore", headers=token("operate")
    )
    assert response.status_code == 409


def test_the_list_filters_sorts_and_pages(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    made = _tenants(db_session, 5)
    for tenant in made[:3]:
        tenant.plan = "team"
    made[0].state = TenantState.FAILED
    db_session.commit()
    response = client.get(
        "/admin/v1/tenants",
        headers=token("read"),
        params={"plan": "team", "sort": "slug", "page": 1, "page_size": 2},
    )
    body = response.json()
    expected = sorted(t.slug for t in made[:3])
    assert (body["total"], [i["slug"] for i in body["items"]]) == (3, expected[:2])


def test_the_list_filters_by_health(client: Client, db_session: Session, token: TokenMaker) -> None:
    made = _tenants(db_session, 3)
    made[1].state = TenantState.FAILED
    db_session.commit()
    response = client.get("/admin/v1/tenants", headers=token("read"), params={"health": "failing"})
    assert [i["slug"] for i in response.json()["items"]] == [made[1].slug]


def test_a_bad_filter_says_what_is_allowed(client: Client, token: TokenMaker) -> None:
    response = client.get("/admin/v1/tenants", headers=token("read"), params={"state": "gone"})
    assert (response.status_code, response.json()["detail"].split(";")[0]) == (
        422,
        "state: unknown gone",
    )


def test_the_summary_counts_and_puts_failing_tenants_first(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    made = _tenants(db_session, 3)
    made[2].state = TenantState.FAILED
    made[2].failure_reason = "RuntimeUnhealthy: boom"
    made[0].plan = "team"
    db_session.commit()
    body = client.get("/admin/v1/summary", headers=token("read")).json()
    assert (
        body["total"],
        body["by_state"],
        body["by_plan"],
        body["needs_attention"][0]["slug"],
    ) == (3, {"failed": 1, "pending": 2}, {"free": 2, "team": 1}, made[2].slug)


def test_the_tenant_detail_has_every_section(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    tenant = _tenants(db_session, 1)[0]
    body = client.get(f"/admin/v1/tenants/{tenant.slug}", headers=token("read")).json()
    assert {
        "spec",
        "status",
        "conditions",
        "events",
        "usage",
        "subscription",
        "plugins",
        "rollouts",
        "audit",
    } <= set(body)


def test_the_tenant_detail_shows_usage_subscription_and_plugins(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    tenant = _tenants(db_session, 1)[0]
    seed_marketplace(db_session)
    marketplace.install(
        db_session, tenant, marketplace.get_plugin(db_session, "techdocs"), actor="user:test"
    )
    db_session.add(
        BillingAccount(
            organization_id=tenant.organization_id,
            tenant_id=tenant.id,
            plan="team",
            status="past_due",
            quantity=12,
        )
    )
    seats.record_usage(
        db_session,
        tenant_id=tenant.id,
        period="2026-11",
        active_users=9,
        provisioned_users=11,
        reported_at=dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC),
    )
    db_session.commit()

    body = client.get(f"/admin/v1/tenants/{tenant.slug}", headers=token("read")).json()

    assert (
        (body["usage"]["period"], body["usage"]["active_users"]),
        (body["subscription"]["status"], body["subscription"]["seats_billed"]),
        [plugin["id"] for plugin in body["plugins"]],
    ) == (("2026-11", 9), ("past_due", 12), ["techdocs"])


def test_a_bulk_dry_run_changes_nothing(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    made = _tenants(db_session, 3)
    response = client.post(
        "/admin/v1/bulk/suspend",
        headers=token("operate"),
        json={"filter": {"state": ["pending"]}, "dry_run": True},
    )
    body = response.json()
    assert (body["matched"], body["results"]) == (3, [])
    db_session.expire_all()
    assert [t.suspended for t in made] == [False, False, False]


def test_a_bulk_dry_run_is_audited(client: Client, db_session: Session, token: TokenMaker) -> None:
    _tenants(db_session, 2)
    client.post("/admin/v1/bulk/suspend", headers=token("operate"), json={"filter": {}})
    entries = _actions(db_session, "fleet.bulk-dry-run")
    assert [(e.details["action"], e.details["matched"]) for e in entries] == [("suspend", 2)]


def test_a_real_bulk_action_acts_on_every_match_only(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    made = _tenants(db_session, 3)
    made[2].plan = "enterprise"
    db_session.commit()
    response = client.post(
        "/admin/v1/bulk/suspend",
        headers=token("operate"),
        json={"filter": {"plan": ["free"]}, "dry_run": False, "params": {"reason": "audit"}},
    )
    assert response.json()["matched"] == 2
    db_session.expire_all()
    assert [t.suspended for t in made] == [True, True, False]


def test_a_bulk_action_reports_each_refusal_and_goes_on(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    made = _tenants(db_session, 2)
    _deleted(db_session, made[0], purge_in=dt.timedelta(days=1))
    response = client.post(
        "/admin/v1/bulk/suspend", headers=token("operate"), json={"dry_run": False}
    )
    results = {r["slug"]: (r["ok"], r["detail"]) for r in response.json()["results"]}
    assert results == {
        made[0].slug: (False, "a portal that is deleted cannot be suspended"),
        made[1].slug: (True, ""),
    }


def test_a_bulk_action_audits_each_tenant(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    made = _tenants(db_session, 3)
    client.post("/admin/v1/bulk/suspend", headers=token("operate"), json={"dry_run": False})
    entries = _actions(db_session, "tenant.suspend")
    assert sorted(e.tenant_id for e in entries) == sorted(t.id for t in made)


def test_the_audit_log_is_queryable_by_operator_and_tenant(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    one, two = _tenants(db_session, 2)
    client.post(f"/admin/v1/tenants/{one.slug}/actions/suspend", headers=token("operate"))
    other = token("operate", "read", operator="night-shift@vendor.example")
    client.post(f"/admin/v1/tenants/{two.slug}/actions/suspend", headers=other)
    by_tenant = client.get("/admin/v1/audit", headers=other, params={"tenant": one.slug}).json()
    by_actor = client.get(
        "/admin/v1/audit",
        headers=other,
        params={"actor": "operator:night-shift@vendor.example", "action": "tenant.suspend"},
    ).json()
    assert ([e["actor"] for e in by_tenant], [e["target"] for e in by_actor]) == (
        ["operator:ops@vendor.example"],
        [two.slug],
    )


def test_the_audit_log_refuses_updates_and_deletes_in_the_database(
    db_session: Session,
) -> None:
    entry = audit.record(db_session, actor="operator:x", action="tenant.suspend")
    db_session.commit()
    with pytest.raises(DBAPIError, match="never changed or deleted"), db_session.begin_nested():
        db_session.execute(
            text("UPDATE audit_entries SET actor = 'someone else' WHERE id = :id"),
            {"id": entry.id},
        )
    with pytest.raises(DBAPIError, match="never changed or deleted"), db_session.begin_nested():
        db_session.execute(text("DELETE FROM audit_entries WHERE id = :id"), {"id": entry.id})


def test_the_audit_log_refuses_changes_through_the_orm(db_session: Session) -> None:
    entry = audit.record(db_session, actor="operator:x", action="tenant.suspend")
    entry.actor = "someone else"
    with pytest.raises(audit.AuditLogIsAppendOnly):
        db_session.flush()


def test_the_openapi_document_describes_the_admin_api(client: Client) -> None:
    schema = client.get("/schema/openapi.json").json()
    assert {
        "/admin/v1/tenants",
        "/admin/v1/bulk/{action}",
        "/admin/v1/rollouts",
        "/admin/v1/audit",
    } <= set(schema["paths"])


def test_the_audit_counts_match(db_session: Session) -> None:
    before = db_session.scalar(select(func.count()).select_from(AuditEntry))
    audit.record(db_session, actor="system", action="x")
    assert db_session.scalar(select(func.count()).select_from(AuditEntry)) == (before or 0) + 1
