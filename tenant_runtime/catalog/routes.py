"""The Backstage catalog REST API, under /api/catalog (reference 3.5)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import structlog
import yaml
from litestar import Controller, MediaType, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from sqlalchemy.orm import Session

from tenant_runtime.auth.guard import principal_of, requires_principal, requires_role
from tenant_runtime.catalog.cursors import decode_cursor, encode_cursor
from tenant_runtime.catalog.descriptors import validate_descriptor
from tenant_runtime.catalog.errors import (
    ERROR_NAMES,
    CatalogError,
    CatalogInputError,
    InvalidEntity,
)
from tenant_runtime.catalog.filters import Predicate, parse_filter_params
from tenant_runtime.catalog.history import entity_history
from tenant_runtime.catalog.locations import LocationService, NotFound, served_location
from tenant_runtime.catalog.refs import EntityRef
from tenant_runtime.catalog.relations import relations_of
from tenant_runtime.catalog.service import (
    CatalogService,
    EntityQuery,
    FullTextFilter,
    OrderField,
    check_fields,
    parse_order,
)

logger = structlog.get_logger(__name__)

STREAM_PAGE_SIZE = 1000
PAGING_PARAMS = ("after=", "limit=", "offset=")
MAX_REFS_PER_REQUEST = 10_000
WRITE_GUARDS = [requires_role("member")]
ADMIN_GUARDS = [requires_role("admin")]

Query = Annotated[list[str] | None, QueryParameter()]


def provide_catalog_service(db_session: NamedDependency[Session]) -> CatalogService:
    return CatalogService(db_session)


def provide_location_service(db_session: NamedDependency[Session], state: State) -> LocationService:
    return LocationService(db_session, state.settings)


def actor_of(request: Request[Any, Any, Any]) -> str | None:
    principal = principal_of(request)
    return f"{principal.kind}:{principal.subject}" if principal else None


def _ref(kind: str, namespace: str, name: str) -> str:
    return str(EntityRef.of(kind, namespace, name))


def _body(data: JSONBody[Any], *, allowed: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CatalogInputError("The request body must be a JSON object")
    if allowed is not None and (extra := sorted(set(data) - allowed)):
        raise CatalogInputError(f"Unexpected field(s) in the request body: {', '.join(extra)}")
    return data


def _string_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogInputError(f"{name} must be a list of strings")
    return value


def _predicate(value: Any) -> Predicate | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CatalogInputError("query must be an object")
    return value


def _empty(status_code: int = 200) -> Response[bytes]:
    return Response(content=b"", status_code=status_code, media_type=MediaType.TEXT)


class CatalogController(Controller):
    path = "/api/catalog"
    tags = ["catalog"]
    guards = [requires_principal]
    dependencies = {
        "catalog_service": Provide(provide_catalog_service, sync_to_thread=False),
        "location_service": Provide(provide_location_service, sync_to_thread=False),
    }

    # -- entities -------------------------------------------------------------------

    @get("/entities", operation_id="GetEntities", sync_to_thread=True)
    def list_entities(
        self,
        *,
        request: Request[Any, Any, Any],
        state: State,
        catalog_service: NamedDependency[CatalogService],
        filters: Annotated[list[str] | None, QueryParameter(name="filter")] = None,
        fields: Query = None,
        order: Query = None,
        limit: Annotated[int | None, QueryParameter(gt=0)] = None,
        offset: Annotated[int | None, QueryParameter(ge=0)] = None,
        after: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """Entities matching the filters, as a bare JSON array (streamed when unbounded)."""
        predicate = parse_filter_params(filters or [])
        order_fields = [parse_order(o, separator=":", field_first=False) for o in order or []]
        projection = check_fields(fields or [])
        if after is not None:
            paging = decode_cursor(after)
            limit, offset = paging.get("limit"), paging.get("offset")
            if not isinstance(limit, int) or not isinstance(offset, int):
                raise CatalogInputError("Malformed after cursor")
        if limit is None:
            return Stream(
                _stream_entities(state, predicate, order_fields, projection, offset or 0),
                media_type=MediaType.JSON,
            )
        page = catalog_service.list_entities(
            predicate=predicate,
            order=order_fields,
            fields=projection,
            limit=limit + 1,
            offset=offset or 0,
        )
        headers = {}
        if len(page) > limit:
            page = page[:limit]
            token = encode_cursor({"limit": limit, "offset": (offset or 0) + limit})
            query = request.url.query
            kept = "&".join(
                p
                for p in query.split("&")
                if p and not p.startswith(("after=", "limit=", "offset="))
            )
            link = f"/entities?{kept + '&' if kept else ''}after={token}"
            headers["link"] = f'<{link}>; rel="next"'
        return Response(page, headers=headers, media_type=MediaType.JSON)

    @get("/entities/by-query", operation_id="GetEntitiesByQuery", sync_to_thread=True)
    def query_entities(
        self,
        *,
        catalog_service: NamedDependency[CatalogService],
        filters: Annotated[list[str] | None, QueryParameter(name="filter")] = None,
        fields: Query = None,
        limit: Annotated[int | None, QueryParameter(ge=0)] = None,
        offset: Annotated[int | None, QueryParameter(ge=0)] = None,
        order_field: Annotated[list[str] | None, QueryParameter(name="orderField")] = None,
        cursor: FromQuery[str | None] = None,
        full_text_term: Annotated[str | None, QueryParameter(name="fullTextFilterTerm")] = None,
        full_text_fields: Annotated[
            list[str] | None, QueryParameter(name="fullTextFilterFields")
        ] = None,
        total_items: Annotated[str | None, QueryParameter(name="totalItems")] = None,
    ) -> dict[str, Any]:
        """A page of entities with a total and cursors; continuation uses only the cursor."""
        text_fields = tuple(check_fields(full_text_fields or []))
        query = EntityQuery(
            predicate=parse_filter_params(filters or []),
            order=parse_order(order_field[0], separator=",", field_first=True)
            if order_field
            else None,
            full_text=FullTextFilter(full_text_term, text_fields) if full_text_term else None,
        )
        return catalog_service.query_entities(
            query,
            limit=limit,
            offset=offset,
            cursor=cursor,
            fields=check_fields(fields or []),
            include_total=total_items != "exclude",
        )

    @post(
        "/entities/by-query",
        operation_id="QueryEntitiesByPredicate",
        status_code=200,
        sync_to_thread=True,
    )
    def query_entities_by_predicate(
        self, catalog_service: NamedDependency[CatalogService], data: JSONBody[Any]
    ) -> dict[str, Any]:
        """The predicate twin of the GET form."""
        body = _body(data)
        order_by = body.get("orderBy") or []
        if isinstance(order_by, dict):
            order_by = [order_by]
        if not isinstance(order_by, list) or not all(
            isinstance(o, dict) and isinstance(o.get("field"), str) for o in order_by
        ):
            raise CatalogInputError("orderBy must be a list of {field, order}")
        text = body.get("fullTextFilter")
        if text is not None and not (isinstance(text, dict) and isinstance(text.get("term"), str)):
            raise CatalogInputError("fullTextFilter must be {term, fields?}")
        query = EntityQuery(
            predicate=_predicate(body.get("query")),
            order=parse_order(
                f"{order_by[0]['field']},{order_by[0].get('order', 'asc')}",
                separator=",",
                field_first=True,
            )
            if order_by
            else None,
            full_text=FullTextFilter(
                text["term"], tuple(_string_list(text.get("fields"), "fullTextFilter.fields"))
            )
            if text
            else None,
            predicate_mode=True,
        )
        limit, offset = body.get("limit"), body.get("offset")
        if (limit is not None and not isinstance(limit, int)) or (
            offset is not None and not isinstance(offset, int)
        ):
            raise CatalogInputError("limit and offset must be integers")
        cursor = body.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise CatalogInputError("cursor must be a string")
        return catalog_service.query_entities(
            query,
            limit=limit,
            offset=offset,
            cursor=cursor,
            fields=check_fields(_string_list(body.get("fields"), "fields")),
            include_total=body.get("totalItems") != "exclude",
        )

    @post(
        "/entities/by-refs", operation_id="GetEntitiesByRefs", status_code=200, sync_to_thread=True
    )
    def entities_by_refs(
        self,
        catalog_service: NamedDependency[CatalogService],
        data: JSONBody[Any],
        filters: Annotated[list[str] | None, QueryParameter(name="filter")] = None,
    ) -> dict[str, Any]:
        body = _body(data)
        refs = body.get("entityRefs")
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise CatalogInputError("entityRefs must be a list of entity refs")
        if len(refs) > MAX_REFS_PER_REQUEST:
            raise CatalogInputError(f"at most {MAX_REFS_PER_REQUEST} entityRefs per request")
        predicate = parse_filter_params(filters or [])
        if body.get("query") is not None:
            query = _predicate(body["query"])
            predicate = {"$all": [query, predicate]} if predicate else query
        items = catalog_service.entities_by_refs(
            refs,
            predicate=predicate,
            fields=check_fields(_string_list(body.get("fields"), "fields")),
        )
        return {"items": items}

    @get("/entities/by-uid/{uid:str}", operation_id="GetEntityByUid", sync_to_thread=True)
    def entity_by_uid(
        self, catalog_service: NamedDependency[CatalogService], uid: FromPath[str]
    ) -> dict[str, Any]:
        entity = catalog_service.entity_by_uid(uid)
        if entity is None:
            raise NotFound(f"No entity with uid {uid}")
        return entity

    @delete(
        "/entities/by-uid/{uid:str}",
        operation_id="DeleteEntityByUid",
        guards=WRITE_GUARDS,
        sync_to_thread=True,
    )
    def delete_entity(
        self,
        request: Request[Any, Any, Any],
        catalog_service: NamedDependency[CatalogService],
        uid: FromPath[str],
    ) -> None:
        """Remove one entity; one a location still emits comes back on its next refresh."""
        from tenant_runtime.catalog.store import CatalogStore  # noqa: PLC0415

        record = catalog_service.record_by_uid(uid)
        if record is not None:
            CatalogStore(catalog_service.session).delete(
                [record], actor=actor_of(request), location_key=record.location_key
            )

    @get(
        "/entities/by-name/{kind:str}/{namespace:str}/{name:str}",
        operation_id="GetEntityByName",
        sync_to_thread=True,
    )
    def entity_by_name(
        self,
        catalog_service: NamedDependency[CatalogService],
        kind: FromPath[str],
        namespace: FromPath[str],
        name: FromPath[str],
    ) -> dict[str, Any]:
        ref = _ref(kind, namespace, name)
        entity = catalog_service.entity_by_ref(ref)
        if entity is None:
            raise NotFound(f"No entity named {ref} found")
        return entity

    @get(
        "/entities/by-name/{kind:str}/{namespace:str}/{name:str}/ancestry",
        operation_id="GetEntityAncestryByName",
        sync_to_thread=True,
    )
    def entity_ancestry(
        self,
        catalog_service: NamedDependency[CatalogService],
        kind: FromPath[str],
        namespace: FromPath[str],
        name: FromPath[str],
    ) -> dict[str, Any]:
        ref = _ref(kind, namespace, name)
        ancestry = catalog_service.ancestry(ref)
        if ancestry is None:
            raise NotFound(f"No entity named {ref} found")
        return ancestry

    @get(
        "/entities/by-name/{kind:str}/{namespace:str}/{name:str}/history",
        operation_id="GetEntityHistoryByName",
        guards=ADMIN_GUARDS,
        sync_to_thread=True,
    )
    def entity_history(
        self,
        catalog_service: NamedDependency[CatalogService],
        kind: FromPath[str],
        namespace: FromPath[str],
        name: FromPath[str],
    ) -> dict[str, Any]:
        """Every change to the entity (even once deleted): who or which location, when, the diff."""
        ref = _ref(kind, namespace, name)
        items = entity_history(catalog_service.session, ref)
        if not items:
            raise NotFound(f"No history for {ref}")
        return {"entityRef": ref, "items": items}

    @get("/entity-facets", operation_id="GetEntityFacets", sync_to_thread=True)
    def entity_facets(
        self,
        catalog_service: NamedDependency[CatalogService],
        facet: Annotated[list[str], QueryParameter()],
        filters: Annotated[list[str] | None, QueryParameter(name="filter")] = None,
    ) -> dict[str, Any]:
        return {
            "facets": catalog_service.facets(facet, predicate=parse_filter_params(filters or []))
        }

    @post(
        "/entity-facets",
        operation_id="QueryEntityFacetsByPredicate",
        status_code=200,
        sync_to_thread=True,
    )
    def entity_facets_by_predicate(
        self, catalog_service: NamedDependency[CatalogService], data: JSONBody[Any]
    ) -> dict[str, Any]:
        body = _body(data)
        facets = _string_list(body.get("facets"), "facets")
        if not facets:
            raise CatalogInputError("facets must name at least one field")
        return {"facets": catalog_service.facets(facets, predicate=_predicate(body.get("query")))}

    @post(
        "/refresh",
        operation_id="RefreshEntity",
        guards=WRITE_GUARDS,
        status_code=200,
        sync_to_thread=True,
    )
    def refresh(
        self,
        request: Request[Any, Any, Any],
        location_service: NamedDependency[LocationService],
        data: JSONBody[Any],
    ) -> Response[bytes]:
        """Read the entity's location again now."""
        body = _body(data, allowed={"entityRef", "authorizationToken"})
        ref = body.get("entityRef")
        if not isinstance(ref, str) or not ref:
            raise CatalogInputError("entityRef must be an entity ref")
        location_service.refresh_entity(_canonical(ref), actor=actor_of(request))
        return _empty()

    @post("/validate-entity", operation_id="ValidateEntity", status_code=200, sync_to_thread=True)
    def validate_entity(self, data: JSONBody[Any]) -> Response[Any]:
        """200 when the entity would be accepted; 400 with `{errors}` saying why not."""
        body = _body(data)
        location = body.get("location")
        if not isinstance(location, str) or not location.startswith("url:"):
            raise CatalogInputError("location must be a location ref of the form url:<target>")
        try:
            descriptor = validate_descriptor(body.get("entity"))
            list(relations_of(descriptor))
        except InvalidEntity as error:
            return Response(
                {"errors": [{"name": "InputError", "message": str(error)}]},
                status_code=400,
                media_type=MediaType.JSON,
            )
        return _empty()

    @post("/analyze-location", operation_id="AnalyzeLocation", status_code=200, sync_to_thread=True)
    def analyze_location(
        self, location_service: NamedDependency[LocationService], data: JSONBody[Any]
    ) -> dict[str, Any]:
        body = _body(data)
        location = body.get("location")
        if not isinstance(location, dict) or not isinstance(location.get("target"), str):
            raise CatalogInputError("location must be {type, target}")
        filename = body.get("catalogFilename") or body.get("catalogFileName")
        if filename is not None and not isinstance(filename, str):
            raise CatalogInputError("catalogFilename must be a string")
        return location_service.analyze(
            str(location.get("type") or "url"), location["target"], filename
        )

    # -- locations ------------------------------------------------------------------

    @post(
        "/locations",
        operation_id="CreateLocation",
        guards=WRITE_GUARDS,
        status_code=201,
        sync_to_thread=True,
    )
    def create_location(
        self,
        request: Request[Any, Any, Any],
        location_service: NamedDependency[LocationService],
        data: JSONBody[Any],
        dry_run: Annotated[str | None, QueryParameter(name="dryRun")] = None,
        on_conflict: Annotated[str | None, QueryParameter(name="onConflict")] = None,
    ) -> dict[str, Any]:
        body = _body(data, allowed={"type", "target", "presence"})
        type_, target = body.get("type", "url"), body.get("target")
        if not isinstance(type_, str) or not isinstance(target, str) or not target:
            raise CatalogInputError("type and target must be strings")
        presence = body.get("presence", "required")
        if presence not in ("required", "optional"):
            raise CatalogInputError("presence must be required or optional")
        if dry_run not in (None, "true", "false"):
            raise CatalogInputError("dryRun must be true or false")
        if on_conflict not in (None, "reject", "refresh"):
            raise CatalogInputError("onConflict must be reject or refresh")
        return location_service.create(
            type_,
            target,
            presence=presence,
            dry_run=dry_run == "true",
            on_conflict=on_conflict or "reject",
            actor=actor_of(request),
        )

    @get("/locations", operation_id="GetLocations", sync_to_thread=True)
    def list_locations(
        self, location_service: NamedDependency[LocationService]
    ) -> list[dict[str, Any]]:
        return [{"data": served_location(record)} for record in location_service.list()]

    @post(
        "/locations/by-query",
        operation_id="GetLocationsByQuery",
        status_code=200,
        sync_to_thread=True,
    )
    def query_locations(
        self, location_service: NamedDependency[LocationService], data: JSONBody[Any]
    ) -> dict[str, Any]:
        body = _body(data)
        limit, cursor = body.get("limit"), body.get("cursor")
        if limit is not None and not isinstance(limit, int):
            raise CatalogInputError("limit must be an integer")
        if cursor is not None and not isinstance(cursor, str):
            raise CatalogInputError("cursor must be a string")
        return location_service.query(
            cursor=cursor, limit=limit, predicate=_predicate(body.get("query"))
        )

    @get("/locations/{location_id:str}", operation_id="GetLocation", sync_to_thread=True)
    def get_location(
        self, location_service: NamedDependency[LocationService], location_id: FromPath[str]
    ) -> dict[str, str]:
        return served_location(location_service.get(location_id))

    @put(
        "/locations/{location_id:str}",
        operation_id="UpdateLocation",
        guards=WRITE_GUARDS,
        sync_to_thread=True,
    )
    def update_location(
        self,
        request: Request[Any, Any, Any],
        location_service: NamedDependency[LocationService],
        location_id: FromPath[str],
        data: JSONBody[Any],
    ) -> dict[str, str]:
        body = _body(data, allowed={"type", "target"})
        type_, target = body.get("type", "url"), body.get("target")
        if not isinstance(type_, str) or not isinstance(target, str) or not target:
            raise CatalogInputError("type and target must be strings")
        record = location_service.update(location_id, type_, target, actor=actor_of(request))
        return served_location(record)

    @delete(
        "/locations/{location_id:str}",
        operation_id="DeleteLocation",
        guards=WRITE_GUARDS,
        sync_to_thread=True,
    )
    def delete_location(
        self,
        request: Request[Any, Any, Any],
        location_service: NamedDependency[LocationService],
        location_id: FromPath[str],
    ) -> None:
        location_service.delete(location_id, actor=actor_of(request))

    @get(
        "/locations/by-entity/{kind:str}/{namespace:str}/{name:str}",
        operation_id="GetLocationByEntity",
        sync_to_thread=True,
    )
    def location_by_entity(
        self,
        location_service: NamedDependency[LocationService],
        kind: FromPath[str],
        namespace: FromPath[str],
        name: FromPath[str],
    ) -> dict[str, str]:
        return served_location(location_service.by_entity(_ref(kind, namespace, name)))

    # -- export -----------------------------------------------------------------------

    @get("/export", operation_id="ExportCatalog", guards=ADMIN_GUARDS, sync_to_thread=False)
    def export(self, state: State, format: FromQuery[str] = "json") -> Stream:
        """The whole catalog, streamed: a JSON array or multi-document YAML."""
        if format not in ("json", "yaml"):
            raise CatalogInputError("format must be json or yaml")
        if format == "json":
            body: Iterator[bytes] = _stream_entities(state, None, [], [], 0)
            media_type: str = MediaType.JSON
        else:
            body = _stream_yaml(state)
            media_type = "application/yaml"
        return Stream(
            body,
            media_type=media_type,
            headers={"content-disposition": f'attachment; filename="catalog.{format}"'},
        )


def _canonical(ref: str) -> str:
    from tenant_runtime.catalog.refs import InvalidEntityRef, parse_entity_ref  # noqa: PLC0415

    try:
        return str(parse_entity_ref(ref, default_kind=None))
    except InvalidEntityRef as error:
        raise CatalogInputError(str(error)) from None


def _stream_entities(
    state: State,
    predicate: Predicate | None,
    order: list[OrderField],
    fields: list[str],
    offset: int,
) -> Iterator[bytes]:
    """A JSON array written a page at a time, from its own session (the request's is gone)."""
    with state.session_factory() as session:
        yield b"["
        first = True
        for entity in CatalogService(session).iter_entities(
            predicate=predicate,
            order=order,
            fields=fields,
            offset=offset,
            page_size=STREAM_PAGE_SIZE,
        ):
            yield (b"" if first else b",") + msgspec.json.encode(entity)
            first = False
        yield b"]"


def _stream_yaml(state: State) -> Iterator[bytes]:
    with state.session_factory() as session:
        for entity in CatalogService(session).iter_entities(page_size=STREAM_PAGE_SIZE):
            yield b"---\n" + yaml.safe_dump(entity, sort_keys=False, allow_unicode=True).encode()


def catalog_error_response(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Render any error under /api/catalog in the shape `@backstage/catalog-client` reads."""
    if isinstance(error, CatalogError):
        status_code, name, message = error.status_code, error.name, str(error)
    elif isinstance(error, HTTPException):
        status_code = error.status_code
        name = ERROR_NAMES.get(status_code, "Error")
        message = _describe(error)
    else:
        logger.exception("unhandled error in the catalog API", exc_info=error)
        status_code, name, message = 500, "Error", "Internal server error"
    url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Response(
        {
            "error": {"name": name, "message": message},
            "request": {"method": request.method, "url": url},
            "response": {"statusCode": status_code},
        },
        status_code=status_code,
        media_type=MediaType.JSON,
    )


def _describe(error: HTTPException) -> str:
    if isinstance(error, ValidationException) and isinstance(error.extra, list):
        problems = [
            f"{item.get('key')}: {item.get('message')}"
            for item in error.extra
            if isinstance(item, dict)
        ]
        if problems:
            return "Invalid query: " + "; ".join(problems)
    return error.detail
