"""Signup validation and the one transaction that records a signup."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.core.errors import ValidationFailed
from control_plane.core.security import verify_password
from control_plane.identity.models import Membership, Organization, Role, User
from control_plane.outbox.models import OutboxMessage
from control_plane.provisioning.models import Operation, OperationState
from control_plane.signup import service
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant, TenantEvent
from control_plane.tenants.service import RECONCILE_TASK
from tests.control_plane.factories import PASSWORD, OrganizationFactory, signup_form

pytestmark = pytest.mark.integration


def _count(session: Session, model: type[object]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Acme Corp.", "acme-corp"),
        ("  Zürich  Data & Co ", "zurich-data-co"),
        ("Ωmega", "mega"),
        ("x" * 80, "x" * 40),
    ],
)
def test_a_slug_is_suggested_from_the_name(name: str, slug: str) -> None:
    assert service.suggest_slug(name) == slug


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("ab", "3 to 40 characters"),
        ("-acme", "lower-case letters, digits and hyphens"),
        ("acme_corp", "lower-case letters, digits and hyphens"),
        ("Acme", "lower-case letters"),
        ("acme--corp", "two hyphens"),
        ("admin", "reserved"),
        ("www", "reserved"),
    ],
)
def test_bad_slugs_are_refused_with_a_reason(db_session: Session, slug: str, message: str) -> None:
    problem = service.slug_problem(db_session, slug)
    assert problem is not None
    assert message in problem


def test_a_taken_slug_is_refused(db_session: Session) -> None:
    organization = OrganizationFactory.build(slug="globex")
    db_session.add(organization)
    db_session.flush()
    assert (
        service.slug_problem(db_session, "globex")
        == "“globex” is already taken; please choose another address."
    )


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "not valid"),
        ({"password": "short"}, "password", "at least 12 characters"),
        ({"password": "aaaaaaaaaaaaaaaa"}, "password", "too few characters"),
        ({"slug": "initech", "password": "initech-password-1"}, "password", "must not contain"),
        ({"plan": "team"}, "plan", "opens for signup soon"),
        ({"plan": "platinum"}, "plan", "Choose one of the plans"),
        ({"organization_name": "x"}, "organization_name", "2 to 100 characters"),
        ({"signup_token": "x"}, "form", "reload the page"),
    ],
)
def test_invalid_signups_name_the_field_and_create_nothing(
    db_session: Session, overrides: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        service.register(db_session, signup_form(**overrides), runtime_release="0.1.0")
    assert message in caught.value.errors[field]
    for model in (Organization, User, Membership, Tenant, OutboxMessage, Operation):
        assert _count(db_session, model) == 0, model


def test_a_signup_records_everything_in_one_transaction(db_session: Session) -> None:
    form = signup_form(organization_name="  Initech   Labs ", email="Owner@Example.com")
    user, tenant = service.register(db_session, form, runtime_release="0.1.0")

    organization = db_session.get(Organization, tenant.organization_id)
    assert organization is not None
    assert organization.name == "Initech Labs"
    assert user.email == "owner@example.com"
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, PASSWORD)
    membership = db_session.scalars(select(Membership)).one()
    assert (membership.user_id, membership.organization_id, membership.role) == (
        user.id,
        organization.id,
        Role.OWNER,
    )
    assert (tenant.state, tenant.generation, tenant.observed_generation) == (
        TenantState.PENDING,
        1,
        0,
    )
    event = db_session.scalars(select(TenantEvent)).one()
    assert (event.to_state, event.reason, event.actor) == (
        TenantState.PENDING,
        "SignedUp",
        "user:owner@example.com",
    )
    operation = db_session.scalars(select(Operation)).one()
    assert (operation.tenant_id, operation.generation, operation.state) == (
        tenant.id,
        1,
        OperationState.PENDING,
    )
    message = db_session.scalars(select(OutboxMessage)).one()
    assert message.task_name == RECONCILE_TASK
    assert message.payload == {"operation_id": str(operation.id)}
    assert message.sent_at is None


def test_an_email_already_registered_is_refused(db_session: Session) -> None:
    service.register(db_session, signup_form(email="dup@example.com"), runtime_release="0.1.0")
    with pytest.raises(ValidationFailed) as caught:
        service.register(db_session, signup_form(email="dup@example.com"), runtime_release="0.1.0")
    assert (
        caught.value.errors["email"] == "An account with this email already exists; log in instead."
    )
    assert _count(db_session, Organization) == 1


def test_the_same_form_submitted_twice_finds_the_first_signup(db_session: Session) -> None:
    form = signup_form()
    user, tenant = service.register(db_session, form, runtime_release="0.1.0")
    assert service.previous_signup(db_session, form.signup_token) == (tenant, user.id)
    assert service.previous_signup(db_session, "another-token-that-was-never-used") is None


def test_an_old_form_token_no_longer_stands_in_for_a_login(db_session: Session) -> None:
    form = signup_form()
    _, tenant = service.register(db_session, form, runtime_release="0.1.0")
    organization = db_session.get(Organization, tenant.organization_id)
    assert organization is not None
    organization.created_at -= service.RESUBMIT_WINDOW
    db_session.flush()
    assert service.previous_signup(db_session, form.signup_token) is None


def test_a_signup_losing_a_race_for_its_slug_leaves_nothing_behind(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.register(db_session, signup_form(slug="contested"), runtime_release="0.1.0")
    # The second signup validated before the first one committed: only the database can tell.
    monkeypatch.setattr(service, "slug_problem", lambda _session, _slug: None)
    with pytest.raises(ValidationFailed) as caught:
        service.register(db_session, signup_form(slug="contested"), runtime_release="0.1.0")
    assert caught.value.errors == {
        "slug": "“contested” is already taken; please choose another address."
    }
    for model in (Organization, User, Membership, Tenant, OutboxMessage, Operation):
        assert _count(db_session, model) == 1, model
