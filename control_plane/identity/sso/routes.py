"""SSO in the console (``/console/sso``) and the tenant API (``/api/v1/tenant/sso``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import structlog
from litestar import Controller, Request, get, post, put
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy.orm import Session

from control_plane.core.errors import DomainError, ValidationFailed
from control_plane.core.web import DbSession, plane, require_login
from control_plane.identity import handoff
from control_plane.identity.access import Member, current_admin
from control_plane.identity.sso import service as sso
from control_plane.tenants import service as tenants

log = structlog.get_logger(__name__)

TEST_PATH = "/auth/sso/test"


class SsoView(msgspec.Struct):
    version: int
    enabled: bool
    enforced: bool
    live: dict[str, Any] | None
    draft: dict[str, Any] | None
    draft_version: int | None
    can_enable: bool
    scim_token_set: bool
    scim_token_rotated_at: str | None
    latest_test: dict[str, Any] | None


class TestStarted(msgspec.Struct):
    test: dict[str, Any]
    url: str


class Enforcement(msgspec.Struct, forbid_unknown_fields=True):
    enforced: bool


class ScimToken(msgspec.Struct):
    token: str
    note: str = "Shown once: store it in your identity provider now."


def _view(session: Session, member: Member) -> SsoView:
    return msgspec.convert(sso.view(session, sso.configuration(session, member.tenant.id)), SsoView)


def _test_url(request: Request[Any, Any, Any], session: Session, member: Member) -> tuple[Any, str]:
    settings = plane(request.app.state).settings
    test = sso.start_test(session, member.tenant, actor=member.actor)
    claims = handoff.ticket_claims(
        settings, member.tenant, member.user, member.membership.role, sso_test=str(test.id)
    )
    ticket = handoff.issue(session, settings, claims)
    log.info("sso.test_started", tenant_id=str(member.tenant.id), test_id=str(test.id))
    return test, handoff.runtime_link(member.tenant, TEST_PATH, ticket)


class SsoApiController(Controller):
    """The tenant API for single sign-on; owners and admins only."""

    path = "/api/v1/tenant/sso"
    guards = [require_login]
    tags = ["tenant"]

    @get("/", operation_id="getSso", sync_to_thread=True)
    def get_sso(self, request: Request[Any, Any, Any], db_session: DbSession) -> SsoView:
        return _view(db_session, current_admin(request, db_session))

    @put("/", operation_id="saveSsoDraft", sync_to_thread=True)
    def save(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        data: JSONBody[sso.SsoSettingsInput],
    ) -> SsoView:
        member = current_admin(request, db_session)
        sso.save_draft(
            db_session, plane(request.app.state).settings, member.tenant, data, actor=member.actor
        )
        return _view(db_session, member)

    @post("/tests", operation_id="startSsoTest", sync_to_thread=True, status_code=HTTP_201_CREATED)
    def start_test(self, request: Request[Any, Any, Any], db_session: DbSession) -> TestStarted:
        member = current_admin(request, db_session)
        test, url = _test_url(request, db_session, member)
        return TestStarted(test=sso.describe_test(test), url=url)

    @get("/tests/{test_id:str}", operation_id="getSsoTest", sync_to_thread=True)
    def get_test(
        self, request: Request[Any, Any, Any], db_session: DbSession, test_id: FromPath[str]
    ) -> dict[str, Any]:
        member = current_admin(request, db_session)
        return sso.describe_test(sso.get_test(db_session, member.tenant, test_id))

    @post("/enable", operation_id="enableSso", sync_to_thread=True, status_code=200)
    def enable(self, request: Request[Any, Any, Any], db_session: DbSession) -> SsoView:
        member = current_admin(request, db_session)
        sso.enable(db_session, member.tenant, actor=member.actor)
        return _view(db_session, member)

    @post("/disable", operation_id="disableSso", sync_to_thread=True, status_code=200)
    def disable(self, request: Request[Any, Any, Any], db_session: DbSession) -> SsoView:
        member = current_admin(request, db_session)
        sso.disable(db_session, member.tenant, actor=member.actor)
        return _view(db_session, member)

    @put("/enforcement", operation_id="setSsoEnforcement", sync_to_thread=True)
    def enforcement(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: JSONBody[Enforcement]
    ) -> SsoView:
        member = current_admin(request, db_session)
        sso.set_enforced(db_session, member.tenant, data.enforced, actor=member.actor)
        return _view(db_session, member)

    @post(
        "/scim-token",
        operation_id="rotateScimToken",
        sync_to_thread=True,
        status_code=HTTP_201_CREATED,
    )
    def scim_token(self, request: Request[Any, Any, Any], db_session: DbSession) -> ScimToken:
        member = current_admin(request, db_session)
        return ScimToken(token=sso.rotate_scim_token(db_session, member.tenant, actor=member.actor))


def _lines_to_mapping(text: str) -> list[sso.RoleMappingInput]:
    mapping = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        group, sep, role = line.rpartition("=")
        if not sep or role.strip() not in ("viewer", "member", "admin"):
            raise ValidationFailed(
                {"role_mapping": f"Line {number}: write “group = viewer|member|admin”."}
            )
        mapping.append(sso.RoleMappingInput(group=group.strip(), role=role.strip()))  # type: ignore[arg-type]
    return mapping


async def _form_input(data: dict[str, Any]) -> sso.SsoSettingsInput:
    """The console form as the API's input; an uploaded metadata file wins over a URL."""

    def text(name: str, default: str = "") -> str:
        value = data.get(name, default)
        return value if isinstance(value, str) else default

    protocol = text("protocol", "oidc")
    if protocol not in ("oidc", "saml"):
        raise ValidationFailed({"protocol": "Choose OIDC or SAML."})
    default_role = text("default_role", "viewer")
    if default_role not in ("viewer", "member", "admin"):
        raise ValidationFailed({"default_role": "Choose viewer, member or admin."})
    mapping = _lines_to_mapping(text("role_mapping"))
    if protocol == "oidc":
        return sso.SsoSettingsInput(
            protocol="oidc",
            oidc=sso.OidcInput(
                issuer=text("issuer"),
                client_id=text("client_id"),
                client_secret=text("client_secret"),
                scopes=text("scopes", "openid email profile").split(),
                claims=sso.ClaimMapping(
                    email=text("claim_email", "email"),
                    name=text("claim_name", "name"),
                    groups=text("claim_groups", "groups"),
                ),
            ),
            role_mapping=mapping,
            default_role=default_role,  # type: ignore[arg-type]
        )
    upload = data.get("metadata_file")
    xml = ""
    if isinstance(upload, UploadFile):
        raw = await upload.read()
        try:
            xml = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed({"metadata": "The metadata file is not UTF-8 XML."}) from None
    return sso.SsoSettingsInput(
        protocol="saml",
        saml=sso.SamlInput(
            metadata_xml=xml,
            metadata_url=text("metadata_url"),
            entity_id=text("entity_id"),
            attributes=sso.ClaimMapping(
                email=text("attr_email", "email"),
                name=text("attr_name", "name"),
                groups=text("attr_groups", "groups"),
            ),
            want_assertions_signed=text("want_assertions_signed") == "on",
        ),
        role_mapping=mapping,
        default_role=default_role,  # type: ignore[arg-type]
    )


def _page(
    request: Request[Any, Any, Any],
    session: Session,
    member: Member,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    scim_token: str | None = None,
    status_code: int = 200,
) -> Template:
    settings = plane(request.app.state).settings
    config = sso.configuration(session, member.tenant.id)
    shown_test = None
    test_id = request.query_params.get("test")
    if test_id:
        try:
            shown_test = sso.describe_test(sso.get_test(session, member.tenant, test_id))
        except DomainError:
            shown_test = None
    runtime = (member.tenant.runtime_url or "").rstrip("/")
    return Template(
        template_name="sso.html",
        context={
            "organization": member.organization,
            "tenant": member.tenant,
            "sso": sso.view(session, config),
            "shown_test": shown_test,
            "errors": errors or {},
            "values": values or {},
            "scim_token": scim_token,
            "redirect_uris": {
                "portal": f"{runtime}/auth/oidc/callback" if runtime else None,
                "console": f"{settings.resolved_public_url}/login/sso/callback",
                "acs": f"{runtime}/auth/saml/acs" if runtime else None,
                "sp_metadata": f"{runtime}/auth/saml/metadata" if runtime else None,
            },
            "events": [
                e
                for e in tenants.events(session, member.tenant.id)
                if e.reason.startswith(("Sso", "Scim", "BreakGlass"))
            ],
        },
        status_code=status_code,
    )


FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
UrlForm = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


class SsoConsoleController(Controller):
    path = "/console/sso"
    guards = [require_login]
    include_in_schema = False

    @get("/", name="sso", sync_to_thread=True)
    def page(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        return _page(request, db_session, current_admin(request, db_session))

    @post("/", status_code=303)
    async def save(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: FormData
    ) -> Template | Redirect:
        import anyio  # noqa: PLC0415

        values = {k: v for k, v in data.items() if isinstance(v, str) and k != "client_secret"}
        try:
            form = await _form_input(data)
        except ValidationFailed as exc:
            return await anyio.to_thread.run_sync(self._failed, request, db_session, exc, values)
        return await anyio.to_thread.run_sync(self._save, request, db_session, form, values)

    @staticmethod
    def _failed(
        request: Request[Any, Any, Any],
        session: Session,
        exc: ValidationFailed,
        values: dict[str, Any],
    ) -> Template:
        member = current_admin(request, session)
        return _page(request, session, member, errors=exc.errors, values=values, status_code=422)

    @staticmethod
    def _save(
        request: Request[Any, Any, Any],
        session: Session,
        form: sso.SsoSettingsInput,
        values: dict[str, Any],
    ) -> Template | Redirect:
        member = current_admin(request, session)
        try:
            sso.save_draft(
                session, plane(request.app.state).settings, member.tenant, form, actor=member.actor
            )
        except ValidationFailed as exc:
            return _page(
                request, session, member, errors=exc.errors, values=values, status_code=422
            )
        return Redirect(path="/console/sso", status_code=303)

    @post("/test", sync_to_thread=True, status_code=303)
    def test(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect | Template:
        member = current_admin(request, db_session)
        try:
            _, url = _test_url(request, db_session, member)
        except DomainError as exc:
            return _page(request, db_session, member, errors={"form": exc.message}, status_code=409)
        return Redirect(path=url, status_code=303)

    @post("/enable", sync_to_thread=True, status_code=303)
    def enable(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect | Template:
        member = current_admin(request, db_session)
        try:
            sso.enable(db_session, member.tenant, actor=member.actor)
        except DomainError as exc:
            return _page(request, db_session, member, errors={"form": exc.message}, status_code=409)
        return Redirect(path="/console/sso", status_code=303)

    @post("/disable", sync_to_thread=True, status_code=303)
    def disable(
        self, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Redirect | Template:
        member = current_admin(request, db_session)
        try:
            sso.disable(db_session, member.tenant, actor=member.actor)
        except DomainError as exc:
            return _page(request, db_session, member, errors={"form": exc.message}, status_code=409)
        return Redirect(path="/console/sso", status_code=303)

    @post("/enforcement", sync_to_thread=True, status_code=303)
    def enforcement(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: UrlForm
    ) -> Redirect | Template:
        member = current_admin(request, db_session)
        try:
            sso.set_enforced(
                db_session, member.tenant, data.get("enforced") == "on", actor=member.actor
            )
        except DomainError as exc:
            return _page(request, db_session, member, errors={"form": exc.message}, status_code=409)
        return Redirect(path="/console/sso", status_code=303)

    @post("/scim-token", sync_to_thread=True, status_code=200)
    def scim_token(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        member = current_admin(request, db_session)
        token = sso.rotate_scim_token(db_session, member.tenant, actor=member.actor)
        return _page(request, db_session, member, scim_token=token)
