"""Planning and controlling rollouts (no cluster needed): waves, cohorts, pins, scopes."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.core.errors import Conflict, ValidationFailed
from control_plane.fleet import releases, rollouts
from control_plane.fleet.models import Rollout, RolloutState, RolloutTarget, TargetState
from control_plane.identity.models import Role
from control_plane.tenants.models import Tenant
from tests.control_plane.factories import PASSWORD, make_tenant
from tests.control_plane.fleet.conftest import Client, TokenMaker

pytestmark = [pytest.mark.fleet, pytest.mark.integration]


def _tenants(db_session: Session, count: int) -> list[Tenant]:
    return [make_tenant(db_session)[2] for _ in range(count)]


def _release(db_session: Session, version: str = "2.0.0") -> None:
    releases.register(
        db_session, version=version, image=f"registry.example/rt:{version}", actor="test"
    )


def _waves_of(db_session: Session, rollout: Rollout) -> dict[object, int]:
    targets = db_session.scalars(
        select(RolloutTarget).where(RolloutTarget.rollout_id == rollout.id)
    )
    return {t.tenant_id: t.wave for t in targets}


def test_percent_waves_are_cumulative_with_at_least_one_tenant_each(db_session: Session) -> None:
    _tenants(db_session, 20)
    _release(db_session)
    rollout = rollouts.start(db_session, version="2.0.0", actor="test")
    sizes = [list(_waves_of(db_session, rollout).values()).count(i) for i in range(4)]
    assert sizes == [1, 1, 8, 10]


def test_early_tenants_go_first_and_late_ones_last(db_session: Session) -> None:
    made = _tenants(db_session, 10)
    made[7].rollout_cohort = "early"
    made[2].rollout_cohort = "late"
    _release(db_session)
    rollout = rollouts.start(db_session, version="2.0.0", actor="test")
    waves = _waves_of(db_session, rollout)
    assert (waves[made[7].id], waves[made[2].id]) == (0, 3)


def test_named_cohort_waves_take_their_cohort(db_session: Session) -> None:
    made = _tenants(db_session, 3)
    made[0].rollout_cohort = "late"
    made[1].rollout_cohort = "early"
    _release(db_session)
    rollout = rollouts.start(
        db_session,
        version="2.0.0",
        actor="test",
        waves=[
            {"name": "first", "cohort": "early"},
            {"name": "main", "cohort": "default"},
            {"name": "last", "cohort": "late"},
        ],
    )
    waves = _waves_of(db_session, rollout)
    assert [waves[t.id] for t in made] == [2, 0, 1]


def test_pinned_tenants_are_left_out(db_session: Session) -> None:
    made = _tenants(db_session, 3)
    made[1].pinned_release = "0.1.0"
    _release(db_session)
    rollout = rollouts.start(db_session, version="2.0.0", actor="test")
    assert made[1].id not in _waves_of(db_session, rollout)


@pytest.mark.parametrize(
    "waves",
    [
        [{"name": "a", "percent": 50}],
        [{"name": "a", "percent": 50}, {"name": "b", "percent": 20}],
        [{"name": "a", "cohort": "vip"}],
        [],
    ],
)
def test_waves_that_make_no_sense_are_refused(
    db_session: Session, waves: list[dict[str, object]]
) -> None:
    _tenants(db_session, 2)
    _release(db_session)
    with pytest.raises(ValidationFailed):
        rollouts.start(db_session, version="2.0.0", actor="test", waves=waves)


def test_one_rollout_at_a_time(db_session: Session) -> None:
    _tenants(db_session, 2)
    _release(db_session)
    _release(db_session, "2.1.0")
    rollouts.start(db_session, version="2.0.0", actor="test")
    with pytest.raises(Conflict, match="still in progress"):
        rollouts.start(db_session, version="2.1.0", actor="test")


def test_a_paused_rollout_moves_nobody(db_session: Session) -> None:
    _tenants(db_session, 4)
    _release(db_session)
    rollout = rollouts.start(db_session, version="2.0.0", actor="test")
    rollouts.pause(db_session, rollout.id, actor="operator:x")
    rollouts.advance(db_session, rollout.id)
    states = {t.state for t in db_session.scalars(select(RolloutTarget))}
    assert states == {TargetState.WAITING}


def test_a_resumed_rollout_moves_its_first_wave(db_session: Session) -> None:
    made = _tenants(db_session, 4)
    _release(db_session)
    rollout = rollouts.start(db_session, version="2.0.0", actor="test")
    rollouts.pause(db_session, rollout.id, actor="operator:x")
    rollouts.resume(db_session, rollout.id, actor="operator:x")
    rollouts.advance(db_session, rollout.id)
    assert sorted(t.runtime_release for t in made) == ["0.1.0", "0.1.0", "0.1.0", "2.0.0"]


def test_an_aborted_rollout_stops_and_cannot_resume(db_session: Session) -> None:
    _tenants(db_session, 2)
    _release(db_session)
    rollout = rollouts.start(db_session, version="2.0.0", actor="test")
    rollouts.abort(db_session, rollout.id, actor="operator:x")
    with pytest.raises(Conflict):
        rollouts.resume(db_session, rollout.id, actor="operator:x")
    assert rollout.state == RolloutState.ABORTED


def test_rollout_controls_are_audited(db_session: Session) -> None:
    _tenants(db_session, 2)
    _release(db_session)
    rollout = rollouts.start(db_session, version="2.0.0", actor="operator:x")
    rollouts.pause(db_session, rollout.id, actor="operator:x")
    rollouts.resume(db_session, rollout.id, actor="operator:x")
    rollouts.abort(db_session, rollout.id, actor="operator:x")
    actions = [e.action for e in audit.entries(db_session, actor="operator:x")]
    assert sorted(actions) == ["rollout.abort", "rollout.pause", "rollout.resume", "rollout.start"]


def test_a_read_token_cannot_start_a_rollout(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    _tenants(db_session, 2)
    _release(db_session)
    db_session.commit()
    response = client.post(
        "/admin/v1/rollouts", headers=token("read", "operate"), json={"release": "2.0.0"}
    )
    assert response.status_code == 403


def test_a_release_token_starts_and_pauses_a_rollout(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    _tenants(db_session, 2)
    _release(db_session)
    db_session.commit()
    headers = token("read", "release")
    started = client.post("/admin/v1/rollouts", headers=headers, json={"release": "2.0.0"}).json()
    paused = client.post(f"/admin/v1/rollouts/{started['id']}/pause", headers=headers).json()
    assert (started["tenants"], paused["state"]) == (2, "paused")


def test_a_release_is_registered_once(db_session: Session) -> None:
    _release(db_session)
    with pytest.raises(Conflict, match="already registered"):
        _release(db_session)


def test_a_release_needs_a_real_image_reference(db_session: Session) -> None:
    with pytest.raises(ValidationFailed, match="image"):
        releases.register(db_session, version="2.0.0", image="not an image!", actor="t")


def _log_in(client: Client, email: str) -> None:
    page = client.get("/login").text
    match = re.search(r'name="_csrf_token" value="([^"]*)"', page)
    assert match
    client.post(
        "/login", data={"_csrf_token": match.group(1), "email": email, "password": PASSWORD}
    )


def test_tenant_admins_read_their_own_audit_log(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    user, _, tenant = make_tenant(db_session)
    _, _, other = make_tenant(db_session)
    db_session.commit()
    headers = token("operate")
    client.post(f"/admin/v1/tenants/{tenant.slug}/actions/suspend", headers=headers)
    client.post(f"/admin/v1/tenants/{other.slug}/actions/suspend", headers=headers)
    _log_in(client, user.email)
    entries = client.get("/api/v1/tenant/audit").json()
    assert [(e["action"], e["target"]) for e in entries] == [("tenant.suspend", tenant.slug)]


def test_tenant_members_cannot_read_the_audit_log(client: Client, db_session: Session) -> None:
    user, _, _ = make_tenant(db_session, role=Role.MEMBER)
    db_session.commit()
    _log_in(client, user.email)
    assert client.get("/api/v1/tenant/audit").status_code == 403
