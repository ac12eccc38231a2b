"""Suspension holds: billing and operators each hold a portal suspended; it runs when none do."""

import pytest
from sqlalchemy.orm import Session

from control_plane.tenants import service as tenants
from control_plane.tenants.lifecycle import TenantState
from tests.control_plane.factories import make_tenant

pytestmark = pytest.mark.integration


def test_a_payment_does_not_lift_an_operator_suspension(db_session: Session) -> None:
    _, _, tenant = make_tenant(db_session)
    tenant.state = TenantState.ACTIVE
    generation = tenant.generation

    assert tenants.suspend(db_session, tenant, holder="operator", actor="op", reason="abuse")
    assert tenants.suspend(db_session, tenant, holder="billing", actor="stripe") is None
    assert (tenant.suspended, tenant.generation) == (True, generation + 1)

    assert tenants.resume(db_session, tenant, holder="billing", actor="stripe") is None
    assert (tenant.suspended, tenant.suspension_holds) == (True, ["operator"])

    assert tenants.resume(db_session, tenant, holder="operator", actor="op") is not None
    assert (tenant.suspended, tenant.suspension_holds, tenant.generation) == (
        False,
        [],
        generation + 2,
    )


def test_resuming_without_a_hold_changes_nothing(db_session: Session) -> None:
    _, _, tenant = make_tenant(db_session)
    generation = tenant.generation
    assert tenants.resume(db_session, tenant, holder="billing", actor="stripe") is None
    assert (tenant.suspended, tenant.generation) == (False, generation)


def test_a_deleted_portal_cannot_be_suspended(db_session: Session) -> None:
    _, _, tenant = make_tenant(db_session)
    tenants.request_deletion(db_session, tenant, actor="owner")
    with pytest.raises(tenants.Conflict, match="cannot be suspended"):
        tenants.suspend(db_session, tenant, holder="operator", actor="op")
