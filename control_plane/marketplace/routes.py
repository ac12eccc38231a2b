"""The marketplace on the web: the tenant console pages, the tenant admin API and the
operator API that publishes and deprecates plugin versions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.params import Body, Parameter
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from control_plane.core.errors import DomainError
from control_plane.core.web import DbSession, plane, require_login, session_user_id
from control_plane.fleet.routes import operator_guard
from control_plane.identity.models import Membership, Organization, Role
from control_plane.identity.service import organization_of
from control_plane.marketplace import plans, purchases
from control_plane.marketplace import service as marketplace
from control_plane.marketplace.models import Plugin, Tier
from control_plane.tenants import service as tenants
from control_plane.tenants.models import Tenant

ADMIN_ROLES = (Role.OWNER, Role.ADMIN)


# -- who is asking -----------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    organization: Organization
    membership: Membership
    tenant: Tenant
    actor: str

    def require_admin(self) -> None:
        if self.membership.role not in ADMIN_ROLES:
            raise PermissionDeniedException("Only owners and admins can change plugins.")


def _caller(request: Request[Any, Any, Any], session: Session) -> Caller:
    user_id = session_user_id(request)
    assert user_id is not None
    found = organization_of(session, user_id)
    if found is None:
        raise PermissionDeniedException("You are not a member of any organization.")
    organization, membership = found
    tenant = tenants.tenant_of_organization(session, organization.id)
    return Caller(organization, membership, tenant, f"user:{user_id}")


# -- shapes ------------------------------------------------------------------------------


class VersionOut(msgspec.Struct):
    version: str
    runtime_releases: str
    permissions: list[str]
    deprecated: bool
    installable: bool
    refused_because: str | None


class PluginOut(msgspec.Struct):
    id: str
    name: str
    description: str
    publisher: str
    tier: str
    price_lookup_key: str | None
    included_in_plans: list[str]
    entitled: bool
    installed_version: str | None
    purchase: str | None
    versions: list[VersionOut]


class InstallIn(msgspec.Struct, forbid_unknown_fields=True):
    version: str | None = None
    config: dict[str, Any] = msgspec.field(default_factory=dict)


class UpgradeIn(msgspec.Struct, forbid_unknown_fields=True):
    version: str | None = None


class ConfigIn(msgspec.Struct, forbid_unknown_fields=True):
    config: dict[str, Any]


class InstallationOut(msgspec.Struct):
    id: str
    version: str
    # Only the keys: values may be credentials and are stored encrypted.
    config_keys: list[str]


def _installation_out(
    plugin: Plugin, row: Any, config: dict[str, Any] | None = None
) -> InstallationOut:
    return InstallationOut(id=plugin.key, version=row.version, config_keys=sorted(config or {}))


class PurchaseOut(msgspec.Struct):
    id: str
    state: str
    current_period_end: str | None


class PluginIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    description: str
    publisher: str
    tier: Tier
    price_lookup_key: str | None = None
    included_in_plans: list[str] = msgspec.field(default_factory=list)
    generated_secrets: list[str] = msgspec.field(default_factory=list)


class VersionIn(msgspec.Struct, forbid_unknown_fields=True):
    version: str
    runtime_releases: str
    permissions: list[str] = msgspec.field(default_factory=list)
    changelog: str = ""


class DeprecateIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = ""


def describe(session: Session, tenant: Tenant, plugin: Plugin) -> PluginOut:
    installed = marketplace.installation(session, tenant, plugin)
    bought = marketplace.addon(session, tenant, plugin)
    rows = []
    for row in marketplace.versions(session, plugin):
        reason = marketplace.incompatibility(tenant, row)
        rows.append(
            VersionOut(
                version=row.version,
                runtime_releases=row.runtime_releases,
                permissions=list(row.permissions),
                deprecated=row.deprecated_at is not None,
                installable=reason is None,
                refused_because=reason,
            )
        )
    return PluginOut(
        id=plugin.key,
        name=plugin.name,
        description=plugin.description,
        publisher=plugin.publisher,
        tier=str(plugin.tier),
        price_lookup_key=plugin.price_lookup_key,
        included_in_plans=plans.plans_including(plugin.key),
        entitled=marketplace.is_entitled(session, tenant, plugin),
        installed_version=installed.version if installed else None,
        purchase=str(bought.state) if bought else None,
        versions=rows,
    )


# -- the tenant admin API ----------------------------------------------------------------


class TenantPluginApiController(Controller):
    path = "/api/v1/tenant/plugins"
    guards = [require_login]
    tags = ["plugins"]

    @get("/", operation_id="listPlugins", sync_to_thread=True)
    def list_plugins(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        q: Annotated[str, Parameter(query="q")] = "",
    ) -> list[PluginOut]:
        caller = _caller(request, db_session)
        return [describe(db_session, caller.tenant, p) for p in marketplace.search(db_session, q)]

    @get("/{key:str}", operation_id="getPlugin", sync_to_thread=True)
    def get_plugin(
        self, request: Request[Any, Any, Any], db_session: DbSession, key: str
    ) -> PluginOut:
        caller = _caller(request, db_session)
        return describe(db_session, caller.tenant, marketplace.get_plugin(db_session, key))

    @post("/{key:str}/install", operation_id="installPlugin", sync_to_thread=True)
    def install(
        self, request: Request[Any, Any, Any], db_session: DbSession, key: str, data: InstallIn
    ) -> InstallationOut:
        caller = _caller(request, db_session)
        caller.require_admin()
        plugin = marketplace.get_plugin(db_session, key)
        row = marketplace.install(
            db_session,
            caller.tenant,
            plugin,
            actor=caller.actor,
            version=data.version,
            config=data.config,
            settings=plane(request.app.state).settings,
        )
        return _installation_out(plugin, row, data.config)

    @post("/{key:str}/upgrade", operation_id="upgradePlugin", sync_to_thread=True)
    def upgrade(
        self, request: Request[Any, Any, Any], db_session: DbSession, key: str, data: UpgradeIn
    ) -> InstallationOut:
        caller = _caller(request, db_session)
        caller.require_admin()
        plugin = marketplace.get_plugin(db_session, key)
        row = marketplace.upgrade(
            db_session, caller.tenant, plugin, actor=caller.actor, version=data.version
        )
        settings = plane(request.app.state).settings
        return _installation_out(plugin, row, marketplace.plain_config(row, settings))

    @put("/{key:str}/config", operation_id="configurePlugin", sync_to_thread=True)
    def configure(
        self, request: Request[Any, Any, Any], db_session: DbSession, key: str, data: ConfigIn
    ) -> InstallationOut:
        caller = _caller(request, db_session)
        caller.require_admin()
        plugin = marketplace.get_plugin(db_session, key)
        row = marketplace.configure(
            db_session,
            caller.tenant,
            plugin,
            actor=caller.actor,
            config=data.config,
            settings=plane(request.app.state).settings,
        )
        return _installation_out(plugin, row, data.config)

    @delete("/{key:str}", operation_id="uninstallPlugin", sync_to_thread=True)
    def uninstall(self, request: Request[Any, Any, Any], db_session: DbSession, key: str) -> None:
        caller = _caller(request, db_session)
        caller.require_admin()
        plugin = marketplace.get_plugin(db_session, key)
        marketplace.uninstall(db_session, caller.tenant, plugin, actor=caller.actor)

    @post("/{key:str}/purchase", operation_id="buyPlugin", sync_to_thread=True)
    def buy(self, request: Request[Any, Any, Any], db_session: DbSession, key: str) -> PurchaseOut:
        caller = _caller(request, db_session)
        caller.require_admin()
        plugin = marketplace.get_plugin(db_session, key)
        bought = purchases.buy(db_session, caller.tenant, plugin, actor=caller.actor)
        return _purchase_out(bought)

    @delete(
        "/{key:str}/purchase", operation_id="cancelPlugin", status_code=200, sync_to_thread=True
    )
    def cancel(
        self, request: Request[Any, Any, Any], db_session: DbSession, key: str
    ) -> PurchaseOut:
        caller = _caller(request, db_session)
        caller.require_admin()
        plugin = marketplace.get_plugin(db_session, key)
        return _purchase_out(
            purchases.cancel(db_session, caller.tenant, plugin, actor=caller.actor)
        )


def _purchase_out(bought: Any) -> PurchaseOut:
    end = bought.current_period_end
    return PurchaseOut(
        id=str(bought.id),
        state=str(bought.state),
        current_period_end=end.isoformat() if end else None,
    )


# -- the console pages -------------------------------------------------------------------


class FormIn(msgspec.Struct):
    version: str = ""


class PluginConsoleController(Controller):
    path = "/console/plugins"
    guards = [require_login]
    include_in_schema = False

    def _page(
        self,
        request: Request[Any, Any, Any],
        session: Session,
        *,
        query: str = "",
        notice: str = "",
        error: str = "",
        status_code: int = 200,
    ) -> Template:
        caller = _caller(request, session)
        plugins = [describe(session, caller.tenant, p) for p in marketplace.search(session, query)]
        return Template(
            template_name="plugins.html",
            context={
                "organization": caller.organization,
                "tenant": caller.tenant,
                "can_change": caller.membership.role in ADMIN_ROLES,
                "plugins": plugins,
                "query": query,
                "notice": notice,
                "error": error,
            },
            status_code=status_code,
        )

    @get("/", name="console-plugins", sync_to_thread=True)
    def index(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        q: Annotated[str, Parameter(query="q")] = "",
        notice: Annotated[str, Parameter(query="notice")] = "",
    ) -> Template:
        return self._page(request, db_session, query=q, notice=notice)

    @post("/{key:str}/{action:str}", sync_to_thread=True, status_code=303)
    def act(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        key: str,
        action: str,
        data: Annotated[FormIn, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        caller = _caller(request, db_session)
        try:
            caller.require_admin()
            plugin = marketplace.get_plugin(db_session, key)
            notice = self._apply(db_session, caller, plugin, action, data.version or None)
        except DomainError as exc:
            db_session.rollback()
            return self._page(request, db_session, error=exc.message, status_code=exc.status_code)
        except PermissionDeniedException as exc:
            return self._page(request, db_session, error=str(exc.detail), status_code=403)
        return Redirect(path=f"/console/plugins?notice={quote(notice)}", status_code=303)

    @staticmethod
    def _apply(
        session: Session, caller: Caller, plugin: Plugin, action: str, version: str | None
    ) -> str:
        match action:
            case "install":
                row = marketplace.install(
                    session, caller.tenant, plugin, actor=caller.actor, version=version
                )
                return f"{plugin.name} {row.version} installed; it goes live in seconds."
            case "upgrade":
                row = marketplace.upgrade(
                    session, caller.tenant, plugin, actor=caller.actor, version=version
                )
                return f"{plugin.name} upgraded to {row.version}."
            case "uninstall":
                marketplace.uninstall(session, caller.tenant, plugin, actor=caller.actor)
                return f"{plugin.name} uninstalled."
            case "buy":
                bought = purchases.buy(session, caller.tenant, plugin, actor=caller.actor)
                if str(bought.state) == "active":
                    return f"{plugin.name} bought; install it to use it."
                return f"{plugin.name} ordered; it is yours once the payment is confirmed."
            case "cancel":
                bought = purchases.cancel(session, caller.tenant, plugin, actor=caller.actor)
                end = bought.current_period_end
                return f"{plugin.name} cancelled; it runs until {end:%Y-%m-%d}." if end else ""
        raise DomainError(f"unknown action {action!r}")


# -- the operator API --------------------------------------------------------------------


class OperatorPluginOut(msgspec.Struct):
    id: str
    name: str
    tier: str
    price_lookup_key: str | None
    included_in_plans: list[str]
    versions: list[dict[str, Any]]


def _operator_view(session: Session, plugin: Plugin) -> OperatorPluginOut:
    return OperatorPluginOut(
        id=plugin.key,
        name=plugin.name,
        tier=str(plugin.tier),
        price_lookup_key=plugin.price_lookup_key,
        included_in_plans=list(plugin.included_in_plans),
        versions=[
            {
                "version": v.version,
                "runtime_releases": v.runtime_releases,
                "permissions": list(v.permissions),
                "deprecated_at": v.deprecated_at.isoformat() if v.deprecated_at else None,
                "deprecation_reason": v.deprecation_reason,
            }
            for v in marketplace.versions(session, plugin)
        ],
    )


class OperatorPluginController(Controller):
    path = "/admin/v1/plugins"
    guards = [operator_guard]
    tags = ["operator"]
    # Reading needs the "read" scope; publishing and deprecating change what tenants run.
    opt = {"exclude_from_csrf": True, "scope": "read"}

    @get("/", operation_id="operatorListPlugins", sync_to_thread=True)
    def list_plugins(self, db_session: DbSession) -> list[OperatorPluginOut]:
        return [_operator_view(db_session, p) for p in marketplace.search(db_session)]

    @put(
        "/{key:str}",
        operation_id="operatorSavePlugin",
        opt={"scope": "release"},
        sync_to_thread=True,
    )
    def save(self, db_session: DbSession, key: str, data: PluginIn) -> OperatorPluginOut:
        draft = marketplace.PluginDraft(key=key, **msgspec.structs.asdict(data))
        return _operator_view(db_session, marketplace.save_plugin(db_session, draft))

    @post(
        "/{key:str}/versions",
        operation_id="operatorPublishVersion",
        opt={"scope": "release"},
        sync_to_thread=True,
    )
    def publish(self, db_session: DbSession, key: str, data: VersionIn) -> OperatorPluginOut:
        plugin = marketplace.get_plugin(db_session, key)
        marketplace.publish_version(
            db_session, plugin, marketplace.VersionDraft(**msgspec.structs.asdict(data))
        )
        return _operator_view(db_session, plugin)

    @post(
        "/{key:str}/versions/{version:str}/deprecate",
        operation_id="operatorDeprecateVersion",
        opt={"scope": "release"},
        sync_to_thread=True,
    )
    def deprecate(
        self, db_session: DbSession, key: str, version: str, data: DeprecateIn
    ) -> OperatorPluginOut:
        plugin = marketplace.get_plugin(db_session, key)
        marketplace.deprecate_version(db_session, plugin, version, data.reason)
        return _operator_view(db_session, plugin)
