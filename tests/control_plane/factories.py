"""Factories for control-plane rows (polyfactory), persisted through the test's session."""

from __future__ import annotations

from uuid import UUID

from polyfactory import Use
from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.security import hash_password
from control_plane.identity.models import Membership, Organization, Role, User
from control_plane.provisioning.models import Operation, OperationState
from control_plane.signup.service import SignupForm
from control_plane.tenants import service as tenants
from control_plane.tenants.models import Tenant

# What a pod needs to land on the test cluster's kwok nodes (see infra/cluster/cluster.py).
KWOK_TOLERATION = [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]
PASSWORD = "correct-horse-battery-staple"
_PASSWORD_HASH = hash_password(PASSWORD)


class OrganizationFactory(SQLAlchemyFactory[Organization]):
    __set_relationships__ = False
    __check_model__ = False
    name = Use(lambda: f"Org {OrganizationFactory.__faker__.unique.company()}"[:100])
    slug = Use(lambda: f"org-{OrganizationFactory.__faker__.unique.pyint(1000, 999999)}")
    plan = "free"
    signup_token = None


class UserFactory(SQLAlchemyFactory[User]):
    __check_model__ = False
    email = Use(lambda: UserFactory.__faker__.unique.email(domain="example.com"))
    password_hash = _PASSWORD_HASH
    is_active = True
    email_verified_at = None
    totp_secret_encrypted = None
    totp_last_step = None
    recovery_code_hashes = Use(list)
    failed_logins = 0
    locked_until = None


def signup_form(**overrides: str) -> SignupForm:
    values = {
        "organization_name": "Initech Labs",
        "slug": f"initech-{OrganizationFactory.__faker__.unique.pyint(1000, 999999)}",
        "email": UserFactory.__faker__.unique.email(domain="example.com"),
        "password": PASSWORD,
        "plan": "free",
        "signup_token": OrganizationFactory.__faker__.unique.pystr(min_chars=24, max_chars=24),
    }
    values.update(overrides)
    return SignupForm(**values)


def make_tenant(session: Session, *, role: Role = Role.OWNER) -> tuple[User, Organization, Tenant]:
    """An organization with one member and a pending tenant (and its operation and outbox row)."""
    organization = OrganizationFactory.build()
    user = UserFactory.build()
    session.add_all([organization, user])
    session.flush()
    session.add(Membership(organization_id=organization.id, user_id=user.id, role=role))
    tenant = tenants.create_tenant(session, organization, runtime_release="0.1.0", actor="test")
    session.flush()
    return user, organization, tenant


def pending_operation(session: Session, tenant_id: UUID) -> Operation:
    """The one operation waiting for a worker (made by the resync or a spec change)."""
    return session.scalars(
        select(Operation).where(
            Operation.tenant_id == tenant_id, Operation.state == OperationState.PENDING
        )
    ).one()
