"""Users and groups as SCIM resources: stored rows, read and written through scim2-models.

Filters and PATCH operations are evaluated by scim2-models on the resource models; a
tenant's directory is small enough to be filtered in memory.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

import structlog
from scim2_models import (
    Context,
    Group,
    InvalidFilterException,
    Meta,
    NotFoundException,
    PatchOp,
    ScimFilter,
    UniquenessException,
    User,
)
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tenant_runtime.auth import models
from tenant_runtime.auth.config import SsoConfig, role_for_groups
from tenant_runtime.auth.service import as_utc, end_sessions_of, utcnow

logger = structlog.get_logger(__name__)

SERVER_MANAGED = ("id", "meta", "groups")


def _version(document: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode())
    return f'W/"{digest.hexdigest()[:16]}"'


def _stored(resource: User[Any] | Group) -> dict[str, Any]:
    """What is kept of a written resource: everything but server-managed and write-only."""
    document = resource.model_dump(scim_ctx=Context.RESOURCE_CREATION_RESPONSE)
    for name in SERVER_MANAGED:
        document.pop(name, None)
    return document


def _meta(kind: str, location: str, created: datetime, modified: datetime, doc: Any) -> Meta:
    return Meta(
        resource_type=kind,
        created=as_utc(created),
        last_modified=as_utc(modified),
        location=location,
        version=_version(doc),
    )


class ScimDirectory:
    """The SCIM view of one tenant's users and groups. Flushes; the request commits."""

    def __init__(self, session: Session, base_url: str, sso: SsoConfig | None) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.sso = sso

    # -- users ---------------------------------------------------------------------------

    def _user_row(self, user_id: str) -> models.User:
        row = self.session.get(models.User, user_id)
        if row is None:
            raise NotFoundException(detail=f"No user {user_id}")
        return row

    def _groups_of(self, user_id: str) -> list[models.Group]:
        return list(
            self.session.scalars(
                select(models.Group)
                .join(models.GroupMembership, models.GroupMembership.group_id == models.Group.id)
                .where(models.GroupMembership.user_id == user_id)
                .order_by(models.Group.display_name)
            )
        )

    def user_resource(self, row: models.User) -> User[Any]:
        document: dict[str, Any] = dict(row.scim_attributes or {})
        document.update(
            {
                "schemas": document.get("schemas") or [User.model_fields["schemas"].default[0]],
                "id": row.id,
                "userName": row.user_name or row.email,
            }
        )
        if row.external_id is not None:
            document["externalId"] = row.external_id
        if row.scim_attributes is None:
            # A user who signed in before any SCIM write: described from what login knows.
            document["emails"] = [{"value": row.email, "primary": True}]
            if row.name:
                document["displayName"] = row.name
        if row.scim_attributes is None or not row.active:
            document["active"] = row.active
        groups = self._groups_of(row.id)
        if groups:
            document["groups"] = [
                {
                    "value": group.id,
                    "display": group.display_name,
                    "$ref": f"{self.base_url}/Groups/{group.id}",
                }
                for group in groups
            ]
        resource: User[Any] = User.model_validate(document)
        resource.meta = _meta(
            "User",
            f"{self.base_url}/Users/{row.id}",
            row.created_at,
            row.updated_at,
            document,
        )
        return resource

    def list_users(self, filter_: str | None) -> list[User[Any]]:
        rows = self.session.scalars(select(models.User).order_by(models.User.created_at))
        resources = [self.user_resource(row) for row in rows]
        return _filtered(User, resources, filter_)

    def _apply_user(self, row: models.User, resource: User[Any]) -> None:
        email = _email_of(resource)
        clash = self.session.scalars(
            select(models.User).where(
                (models.User.email == email) | (models.User.user_name == resource.user_name),
                models.User.id != row.id,
            )
        ).first()
        if clash is not None:
            raise UniquenessException(detail="A user with this userName or email already exists")
        was_active = row.active
        row.email = email
        row.user_name = resource.user_name
        row.external_id = resource.external_id
        row.name = _display_name(resource) or row.name or ""
        row.active = resource.active is not False
        row.scim_attributes = _stored(resource)
        row.updated_at = utcnow()
        self.session.flush()
        if was_active and not row.active:
            # Deactivation takes effect at once: open sessions end, future ones are refused.
            end_sessions_of(self.session, row.id)
            logger.info("scim.user_deactivated", user_id=row.id)

    def create_user(self, resource: User[Any]) -> User[Any]:
        now = utcnow()
        row = models.User(
            id=str(uuid.uuid4()),
            email="",
            name="",
            role=self.sso.default_role if self.sso else "viewer",
            active=True,
            source="scim",
            created_at=now,
            updated_at=now,
        )
        # Validate uniqueness before the row exists, so a conflict leaves nothing behind.
        self.session.add(row)
        try:
            self._apply_user(row, resource)
        except UniquenessException:
            self.session.expunge(row)
            raise
        logger.info("scim.user_created", user_id=row.id)
        return self.user_resource(row)

    def replace_user(self, user_id: str, resource: User[Any]) -> User[Any]:
        row = self._user_row(user_id)
        self._apply_user(row, resource)
        logger.info("scim.user_replaced", user_id=row.id)
        return self.user_resource(row)

    def patch_user(self, user_id: str, patch: PatchOp[User[Any]]) -> User[Any]:
        row = self._user_row(user_id)
        resource = self.user_resource(row)
        patch.patch(resource)
        self._apply_user(row, resource)
        logger.info("scim.user_patched", user_id=row.id)
        return self.user_resource(row)

    def delete_user(self, user_id: str) -> None:
        row = self._user_row(user_id)
        end_sessions_of(self.session, row.id)
        self.session.delete(row)
        self.session.flush()
        logger.info("scim.user_deleted", user_id=user_id)

    def get_user(self, user_id: str) -> User[Any]:
        return self.user_resource(self._user_row(user_id))

    # -- groups --------------------------------------------------------------------------

    def _group_row(self, group_id: str) -> models.Group:
        row = self.session.get(models.Group, group_id)
        if row is None:
            raise NotFoundException(detail=f"No group {group_id}")
        return row

    def group_resource(self, row: models.Group) -> Group:
        document: dict[str, Any] = dict(row.scim_attributes or {})
        members = self.session.scalars(
            select(models.User)
            .join(models.GroupMembership, models.GroupMembership.user_id == models.User.id)
            .where(models.GroupMembership.group_id == row.id)
            .order_by(models.User.email)
        )
        document.update(
            {
                "schemas": document.get("schemas") or [Group.model_fields["schemas"].default[0]],
                "id": row.id,
                "displayName": row.display_name,
            }
        )
        if row.external_id is not None:
            document["externalId"] = row.external_id
        # Membership is the table's; the display names are the identity provider's own.
        displays = {
            str(member.get("value")): member.get("display")
            for member in document.pop("members", None) or []
            if isinstance(member, dict)
        }
        member_list = [
            {
                "value": user.id,
                "display": displays.get(user.id) or user.name or user.email,
                "$ref": f"{self.base_url}/Users/{user.id}",
                "type": "User",
            }
            for user in members
        ]
        if member_list:
            document["members"] = member_list
        resource = Group.model_validate(document)
        resource.meta = _meta(
            "Group",
            f"{self.base_url}/Groups/{row.id}",
            row.created_at,
            row.updated_at,
            document,
        )
        return resource

    def list_groups(self, filter_: str | None) -> list[Group]:
        rows = self.session.scalars(select(models.Group).order_by(models.Group.created_at))
        return _filtered(Group, [self.group_resource(row) for row in rows], filter_)

    def _apply_group(self, row: models.Group, resource: Group) -> None:
        name = (resource.display_name or "").strip()
        clash = self.session.scalars(
            select(models.Group).where(models.Group.display_name == name, models.Group.id != row.id)
        ).first()
        if clash is not None:
            raise UniquenessException(detail="A group with this displayName already exists")
        row.display_name = name
        row.external_id = resource.external_id
        row.scim_attributes = _stored(resource)
        row.updated_at = utcnow()
        self.session.flush()
        wanted = {str(member.value) for member in resource.members or [] if member.value}
        for user_id in wanted:
            self._user_row(user_id)  # an unknown member is a 404, not a dangling membership
        current = set(
            self.session.scalars(
                select(models.GroupMembership.user_id).where(
                    models.GroupMembership.group_id == row.id
                )
            )
        )
        for user_id in wanted - current:
            self.session.add(models.GroupMembership(group_id=row.id, user_id=user_id))
        if current - wanted:
            self.session.execute(
                delete(models.GroupMembership).where(
                    models.GroupMembership.group_id == row.id,
                    models.GroupMembership.user_id.in_(current - wanted),
                )
            )
        self.session.flush()
        self._refresh_roles(wanted | current)

    def _refresh_roles(self, user_ids: set[str]) -> None:
        """Group membership drives roles: each member's role follows the role mapping."""
        if self.sso is None:
            return
        for user_id in user_ids:
            user = self.session.get(models.User, user_id)
            if user is None:
                continue
            names = [group.display_name for group in self._groups_of(user_id)]
            role = role_for_groups(self.sso, names)
            if user.role != role:
                logger.info("scim.role_changed", user_id=user_id, old=user.role, new=role)
                user.role = role
        self.session.flush()

    def create_group(self, resource: Group) -> Group:
        now = utcnow()
        row = models.Group(id=str(uuid.uuid4()), display_name="", created_at=now, updated_at=now)
        self.session.add(row)
        try:
            self._apply_group(row, resource)
        except (UniquenessException, NotFoundException):
            self.session.expunge(row)
            raise
        logger.info("scim.group_created", group_id=row.id)
        return self.group_resource(row)

    def replace_group(self, group_id: str, resource: Group) -> Group:
        row = self._group_row(group_id)
        self._apply_group(row, resource)
        return self.group_resource(row)

    def patch_group(self, group_id: str, patch: PatchOp[Group]) -> Group:
        row = self._group_row(group_id)
        resource = self.group_resource(row)
        patch.patch(resource)
        self._apply_group(row, resource)
        return self.group_resource(row)

    def delete_group(self, group_id: str) -> None:
        row = self._group_row(group_id)
        members = set(
            self.session.scalars(
                select(models.GroupMembership.user_id).where(
                    models.GroupMembership.group_id == row.id
                )
            )
        )
        self.session.delete(row)
        self.session.flush()
        self._refresh_roles(members)

    def get_group(self, group_id: str) -> Group:
        return self.group_resource(self._group_row(group_id))


def _filtered(model: Any, resources: list[Any], filter_: str | None) -> list[Any]:
    if not filter_:
        return resources
    try:
        bound = ScimFilter[model](filter_)
    except (ValueError, InvalidFilterException) as error:
        raise InvalidFilterException(detail=f"Invalid filter: {error}") from error
    return [resource for resource in resources if bound.match(resource)]


def _email_of(resource: User[Any]) -> str:
    emails = resource.emails or []
    primary = next((e.value for e in emails if e.primary and e.value), None)
    chosen = primary or next((e.value for e in emails if e.value), None) or resource.user_name
    return str(chosen or "").strip().lower()


def _display_name(resource: User[Any]) -> str | None:
    if resource.display_name:
        return resource.display_name
    if resource.name is not None and resource.name.formatted:
        return resource.name.formatted
    if resource.name is not None and (resource.name.given_name or resource.name.family_name):
        return " ".join(p for p in (resource.name.given_name, resource.name.family_name) if p)
    return None
