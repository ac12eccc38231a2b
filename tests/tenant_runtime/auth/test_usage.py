"""Active and provisioned users, as the runtime reports them for seats."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.orm import Session

from tenant_runtime.auth.models import LoginDay, User
from tenant_runtime.auth.usage import active_users, provisioned_users
from tests.tenant_runtime.auth.conftest import ControlPlaneKeys

pytestmark = pytest.mark.sso


def _user(session: Session, *, active: bool = True) -> User:
    now = datetime.now(UTC)
    user = User(
        id=str(uuid.uuid4()),
        email=f"{uuid.uuid4().hex[:8]}@example.com",
        name="",
        role="viewer",
        active=active,
        source="sso",
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    session.flush()
    return user


def test_a_user_active_on_several_days_counts_once(session: Session) -> None:
    user = _user(session)
    session.add_all([LoginDay(user_id=user.id, day=date(2026, 11, d)) for d in (1, 15, 30)])
    assert active_users(session, "2026-11") == 1


def test_only_the_period_counts(session: Session) -> None:
    november, december = _user(session), _user(session)
    session.add_all(
        [
            LoginDay(user_id=november.id, day=date(2026, 11, 30)),
            LoginDay(user_id=december.id, day=date(2026, 12, 1)),
        ]
    )
    assert (active_users(session, "2026-11"), active_users(session, "2026-12")) == (1, 1)


def test_deactivated_users_are_not_provisioned(session: Session) -> None:
    _user(session)
    _user(session, active=False)
    assert provisioned_users(session) == 1


def test_a_malformed_period_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        active_users(session, "November")


def test_a_handoff_login_makes_the_user_active(
    portal: TestClient[Litestar], control_plane: ControlPlaneKeys, session: Session
) -> None:
    portal.get("/auth/handoff", params={"ticket": control_plane.ticket()})
    assert active_users(session, datetime.now(UTC).strftime("%Y-%m")) == 1
