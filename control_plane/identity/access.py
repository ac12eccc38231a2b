"""Who is asking: the signed-in user, their organization, role and portal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from sqlalchemy.orm import Session

from control_plane.core.web import session_user_id
from control_plane.identity.models import Membership, Organization, Role, User
from control_plane.identity.service import organization_of
from control_plane.tenants import service as tenants
from control_plane.tenants.models import Tenant


@dataclass(frozen=True)
class Member:
    user: User
    organization: Organization
    membership: Membership
    tenant: Tenant

    @property
    def actor(self) -> str:
        return f"user:{self.user.id}"

    @property
    def is_admin(self) -> bool:
        return self.membership.role in (Role.OWNER, Role.ADMIN)


def current_member(request: Request[Any, Any, Any], session: Session) -> Member:
    user_id = session_user_id(request)
    user = session.get(User, user_id) if user_id else None
    if user is None or not user.is_active:
        raise NotAuthorizedException("Log in to continue.")
    found = organization_of(session, user.id)
    if found is None:
        raise NotFoundException("You are not a member of any organization.")
    organization, membership = found
    return Member(
        user=user,
        organization=organization,
        membership=membership,
        tenant=tenants.tenant_of_organization(session, organization.id),
    )


def current_admin(request: Request[Any, Any, Any], session: Session) -> Member:
    member = current_member(request, session)
    if not member.is_admin:
        raise PermissionDeniedException("Only owners and admins can change single sign-on.")
    return member
