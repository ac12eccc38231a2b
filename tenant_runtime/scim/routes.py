"""`/scim/v2`: the SCIM endpoints an identity provider provisions the portal through."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import structlog
from litestar import Controller, Request, Response, delete, get, patch, post, put, route
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler
from pydantic import ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    Error,
    ETag,
    Filter,
    Group,
    ListResponse,
    Patch,
    PatchOp,
    ResourceType,
    Schema,
    SCIMException,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
    User,
)
from sqlalchemy.orm import Session

from tenant_runtime.auth.config import SsoConfig
from tenant_runtime.scim.service import ScimDirectory

logger = structlog.get_logger(__name__)

SCIM_MEDIA_TYPE = "application/scim+json"
MAX_RESULTS = 200


def scim_response(document: dict[str, Any], status_code: int = 200) -> Response[Any]:
    return Response(document, status_code=status_code, media_type=SCIM_MEDIA_TYPE)


def scim_error_response(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    if isinstance(error, SCIMException):
        scim_error = error.to_error()
    elif isinstance(error, ValidationError):
        scim_error = Error(status=400, scim_type="invalidValue", detail=_validation_detail(error))
    else:
        raise error
    logger.warning(
        "scim.request_refused",
        path=request.url.path,
        method=request.method,
        status=scim_error.status,
        scim_type=scim_error.scim_type,
        detail=scim_error.detail,
    )
    return scim_response(scim_error.model_dump(), int(scim_error.status or 400))


def _validation_detail(error: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in entry['loc'])}: {entry['msg']}" for entry in error.errors()
    ]
    return "; ".join(parts)[:500] or "The request body is not a valid SCIM resource"


def requires_scim_token(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """The per-tenant bearer token, compared by its SHA-256 with the SSO section's digest."""
    sso: SsoConfig | None = connection.app.state.sso_state.sso
    expected = sso.scim_token_sha256 if sso is not None else None
    scheme, _sep, token = connection.headers.get("authorization", "").partition(" ")
    if not expected:
        logger.warning("scim.not_configured")
        raise UnauthorizedException(detail="SCIM provisioning is not set up for this portal")
    presented = hashlib.sha256(token.strip().encode()).hexdigest()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented, expected.lower()):
        logger.warning("scim.bad_token")
        raise UnauthorizedException(detail="Missing or invalid SCIM bearer token")


def service_provider_config(base_url: str) -> ServiceProviderConfig:
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="OAuth Bearer Token",
                description="The SCIM token shown once in the Backlot console",
                primary=True,
            )
        ],
    )


def resource_types(base_url: str) -> list[ResourceType]:
    found = []
    for model in (User, Group):
        resource_type = ResourceType.from_resource(model)
        resource_type.meta = None
        found.append(resource_type)
    return found


class ScimController(Controller):
    path = "/scim/v2"
    include_in_schema = False
    guards = [requires_scim_token]
    exception_handlers = {SCIMException: scim_error_response, ValidationError: scim_error_response}

    def _directory(self, state: State, db_session: Session) -> ScimDirectory:
        return ScimDirectory(
            db_session, f"{state.settings.portal_url}/scim/v2", state.sso_state.sso
        )

    # -- discovery -----------------------------------------------------------------------

    @get("/ServiceProviderConfig", sync_to_thread=False)
    def get_service_provider_config(self, state: State) -> Response[Any]:
        config = service_provider_config(state.settings.portal_url)
        return scim_response(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))

    @get("/ResourceTypes", sync_to_thread=False)
    def list_resource_types(self, state: State) -> Response[Any]:
        types = resource_types(state.settings.portal_url)
        listing = ListResponse[ResourceType](
            total_results=len(types), start_index=1, items_per_page=len(types), resources=types
        )
        return scim_response(listing.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))

    @get("/ResourceTypes/{name:str}", sync_to_thread=False)
    def get_resource_type(self, state: State, name: str) -> Response[Any]:
        for resource_type in resource_types(state.settings.portal_url):
            if resource_type.id == name:
                return scim_response(
                    resource_type.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
                )
        return scim_response(Error(status=404, detail=f"No resource type {name}").model_dump(), 404)

    @get("/Schemas", sync_to_thread=False)
    def list_schemas(self) -> Response[Any]:
        schemas = [User.to_schema(), Group.to_schema()]
        listing = ListResponse[Schema](
            total_results=len(schemas),
            start_index=1,
            items_per_page=len(schemas),
            resources=schemas,
        )
        return scim_response(listing.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))

    @get("/Schemas/{schema_id:str}", sync_to_thread=False)
    def get_schema(self, schema_id: str) -> Response[Any]:
        for schema in (User.to_schema(), Group.to_schema()):
            if schema.id == schema_id:
                return scim_response(schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
        return scim_response(Error(status=404, detail=f"No schema {schema_id}").model_dump(), 404)

    # -- users ---------------------------------------------------------------------------

    @get("/Users", sync_to_thread=True)
    def list_users(
        self, request: Request[Any, Any, Any], state: State, db_session: Session
    ) -> Response[Any]:
        search = _search_from_query(User, request)
        found = self._directory(state, db_session).list_users(search.filter)
        return scim_response(_page(User, found, search))

    @post("/Users/.search", sync_to_thread=True, status_code=200)
    def search_users(
        self, state: State, db_session: Session, data: dict[str, Any]
    ) -> Response[Any]:
        search = SearchRequest[User].model_validate(  # type: ignore[type-arg]
            data, scim_ctx=Context.SEARCH_REQUEST
        )
        found = self._directory(state, db_session).list_users(search.filter)
        return scim_response(_page(User, found, search))

    @post("/Users", sync_to_thread=True)
    def create_user(self, state: State, db_session: Session, data: dict[str, Any]) -> Response[Any]:
        resource: User[Any] = User.model_validate(data, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        created = self._directory(state, db_session).create_user(resource)
        return scim_response(created.model_dump(scim_ctx=Context.RESOURCE_CREATION_RESPONSE), 201)

    @get("/Users/{user_id:str}", sync_to_thread=True)
    def get_user(
        self, request: Request[Any, Any, Any], state: State, db_session: Session, user_id: str
    ) -> Response[Any]:
        found = self._directory(state, db_session).get_user(user_id)
        return scim_response(
            found.model_dump(
                scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
                response_parameters=_search_from_query(User, request),
            )
        )

    @put("/Users/{user_id:str}", sync_to_thread=True)
    def replace_user(
        self, state: State, db_session: Session, user_id: str, data: dict[str, Any]
    ) -> Response[Any]:
        resource: User[Any] = User.model_validate(
            data, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST
        )
        replaced = self._directory(state, db_session).replace_user(user_id, resource)
        return scim_response(replaced.model_dump(scim_ctx=Context.RESOURCE_REPLACEMENT_RESPONSE))

    @patch("/Users/{user_id:str}", sync_to_thread=True)
    def patch_user(
        self, state: State, db_session: Session, user_id: str, data: dict[str, Any]
    ) -> Response[Any]:
        operation: PatchOp[User[Any]] = PatchOp[User].model_validate(  # type: ignore[type-arg]
            data, scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        patched = self._directory(state, db_session).patch_user(user_id, operation)
        return scim_response(patched.model_dump(scim_ctx=Context.RESOURCE_PATCH_RESPONSE))

    @delete("/Users/{user_id:str}", sync_to_thread=True, status_code=204)
    def delete_user(self, state: State, db_session: Session, user_id: str) -> None:
        self._directory(state, db_session).delete_user(user_id)

    # -- groups --------------------------------------------------------------------------

    @get("/Groups", sync_to_thread=True)
    def list_groups(
        self, request: Request[Any, Any, Any], state: State, db_session: Session
    ) -> Response[Any]:
        search = _search_from_query(Group, request)
        found = self._directory(state, db_session).list_groups(search.filter)
        return scim_response(_page(Group, found, search))

    @post("/Groups/.search", sync_to_thread=True, status_code=200)
    def search_groups(
        self, state: State, db_session: Session, data: dict[str, Any]
    ) -> Response[Any]:
        search = SearchRequest[Group].model_validate(data, scim_ctx=Context.SEARCH_REQUEST)
        found = self._directory(state, db_session).list_groups(search.filter)
        return scim_response(_page(Group, found, search))

    @post("/Groups", sync_to_thread=True)
    def create_group(
        self, state: State, db_session: Session, data: dict[str, Any]
    ) -> Response[Any]:
        resource = Group.model_validate(data, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        created = self._directory(state, db_session).create_group(resource)
        return scim_response(created.model_dump(scim_ctx=Context.RESOURCE_CREATION_RESPONSE), 201)

    @get("/Groups/{group_id:str}", sync_to_thread=True)
    def get_group(
        self, request: Request[Any, Any, Any], state: State, db_session: Session, group_id: str
    ) -> Response[Any]:
        found = self._directory(state, db_session).get_group(group_id)
        return scim_response(
            found.model_dump(
                scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
                response_parameters=_search_from_query(Group, request),
            )
        )

    @put("/Groups/{group_id:str}", sync_to_thread=True)
    def replace_group(
        self, state: State, db_session: Session, group_id: str, data: dict[str, Any]
    ) -> Response[Any]:
        resource = Group.model_validate(data, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
        replaced = self._directory(state, db_session).replace_group(group_id, resource)
        return scim_response(replaced.model_dump(scim_ctx=Context.RESOURCE_REPLACEMENT_RESPONSE))

    @patch("/Groups/{group_id:str}", sync_to_thread=True)
    def patch_group(
        self, state: State, db_session: Session, group_id: str, data: dict[str, Any]
    ) -> Response[Any]:
        operation = PatchOp[Group].model_validate(data, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        patched = self._directory(state, db_session).patch_group(group_id, operation)
        return scim_response(patched.model_dump(scim_ctx=Context.RESOURCE_PATCH_RESPONSE))

    @delete("/Groups/{group_id:str}", sync_to_thread=True, status_code=204)
    def delete_group(self, state: State, db_session: Session, group_id: str) -> None:
        self._directory(state, db_session).delete_group(group_id)

    @post("/.search", sync_to_thread=True, status_code=200)
    def search_all(self, state: State, db_session: Session, data: dict[str, Any]) -> Response[Any]:
        search = SearchRequest[User | Group].model_validate(  # type: ignore[type-arg]
            data, scim_ctx=Context.SEARCH_REQUEST
        )
        directory = self._directory(state, db_session)
        found = [*directory.list_users(search.filter), *directory.list_groups(search.filter)]
        return scim_response(_page(User | Group, found, search))

    @route(
        "/{rest:path}",
        http_method=["GET", "POST", "PUT", "PATCH", "DELETE"],
        sync_to_thread=False,
    )
    def unknown(self, rest: str) -> Response[Any]:
        detail = f"No SCIM endpoint {rest}"
        return scim_response(Error(status=404, detail=detail).model_dump(), 404)


def _search_from_query(model: Any, request: Request[Any, Any, Any]) -> Any:
    """The query string's filter, paging and attribute selection as a SearchRequest."""
    query = request.query_params
    fields = {
        "filter": query.get("filter"),
        "startIndex": query.get("startIndex"),
        "count": query.get("count"),
        "attributes": query.get("attributes"),
        "excludedAttributes": query.get("excludedAttributes"),
    }
    given = {name: value for name, value in fields.items() if value is not None}
    return SearchRequest[model].model_validate(given, scim_ctx=Context.SEARCH_REQUEST)


def _page(model: Any, found: list[Any], search: Any) -> dict[str, Any]:
    start = max(search.start_index or 1, 1)
    count = MAX_RESULTS if search.count is None else search.count
    size = max(min(count, MAX_RESULTS), 0)
    page = found[start - 1 : start - 1 + size]
    listing = ListResponse[model](
        total_results=len(found), start_index=start, items_per_page=len(page), resources=page
    )
    return listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=search)
