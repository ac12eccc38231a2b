"""The catalog in the portal: a filtered list with facet counts and search, entity pages,
and registering a location. Every page here needs a principal (a session or a token)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from tenant_runtime.auth.guard import principal_of, requires_principal
from tenant_runtime.catalog.errors import CatalogError
from tenant_runtime.catalog.locations import LocationService
from tenant_runtime.catalog.refs import EntityRef
from tenant_runtime.catalog.service import CatalogService, EntityQuery, FullTextFilter, OrderField
from tenant_runtime.plugins import host as plugin_hosting

PAGE_SIZE = 50
CSRF_COOKIE = "backlot_catalog_csrf"
# Filter name in the page's query string -> the catalog key it filters on.
FILTERS = {
    "kind": "kind",
    "type": "spec.type",
    "owner": "relations.ownedBy",
    "lifecycle": "spec.lifecycle",
    "tag": "metadata.tags",
}
KIND_FILTER_ORDER = ["Component", "API", "System", "Domain", "Resource", "Group", "User"]


def provide_catalog_service(db_session: NamedDependency[Session]) -> CatalogService:
    return CatalogService(db_session)


def sign_in_page(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    """Browsers without a principal get a page that sends them to sign in, not a JSON 401."""
    return Template(
        template_name="portal/sign_in_needed.html",
        context={"organization_name": request.app.state.settings.organization_name},
        status_code=401,
    )


def forbidden_page(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    return Response(str(getattr(error, "detail", error)), status_code=403)


def _ref_parts(ref: str) -> dict[str, str]:
    kind, _, rest = ref.partition(":")
    namespace, _, name = rest.partition("/")
    return {"ref": ref, "kind": kind, "namespace": namespace, "name": name}


def entity_path(ref: str) -> str:
    parts = _ref_parts(ref)
    return f"/catalog/{parts['kind']}/{parts['namespace']}/{parts['name']}"


def _row(entity: dict[str, Any]) -> dict[str, Any]:
    metadata, spec = entity["metadata"], entity.get("spec", {})
    ref = str(EntityRef.of(entity["kind"], metadata.get("namespace", "default"), metadata["name"]))
    owner = next(
        (r["targetRef"] for r in entity.get("relations", []) if r["type"] == "ownedBy"), ""
    )
    return {
        "ref": ref,
        "path": entity_path(ref),
        "kind": entity["kind"],
        "name": metadata["name"],
        "title": metadata.get("title") or metadata["name"],
        "description": metadata.get("description", ""),
        "type": spec.get("type", "") if isinstance(spec.get("type"), str) else "",
        "lifecycle": spec.get("lifecycle", "") if isinstance(spec.get("lifecycle"), str) else "",
        "owner": owner,
        "owner_path": entity_path(owner) if owner else "",
        "tags": metadata.get("tags", []),
    }


class CatalogPagesController(Controller):
    include_in_schema = False
    guards = [requires_principal]
    dependencies = {"catalog_service": Provide(provide_catalog_service, sync_to_thread=False)}
    exception_handlers = {
        NotAuthorizedException: sign_in_page,
        PermissionDeniedException: forbidden_page,
    }

    @get("/catalog", sync_to_thread=True)
    def catalog(
        self,
        *,
        state: State,
        catalog_service: NamedDependency[CatalogService],
        kind: FromQuery[str | None] = None,
        entity_type: Annotated[str | None, QueryParameter(name="type")] = None,
        owner: FromQuery[str | None] = None,
        lifecycle: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        """The catalog list: filters with facet counts, full-text search, cursor paging."""
        chosen = {
            name: value
            for name, value in {
                "kind": kind,
                "type": entity_type,
                "owner": owner,
                "lifecycle": lifecycle,
                "tag": tag,
            }.items()
            if value
        }
        statements = [{FILTERS[name]: value} for name, value in chosen.items()]
        predicate = {"$all": statements} if statements else None
        text = FullTextFilter(q) if q and q.strip() else None
        page = catalog_service.query_entities(
            EntityQuery(predicate, OrderField("metadata.name", "asc"), text),
            limit=PAGE_SIZE,
            cursor=cursor,
        )
        facets = {}
        for name, key in FILTERS.items():
            # Each facet counts within the other filters, so its counts say what picking
            # one of its values would leave.
            others = [{FILTERS[n]: v} for n, v in chosen.items() if n != name]
            counts = catalog_service.facets([key], predicate={"$all": others} if others else None)[
                key
            ]
            facets[name] = [
                {
                    "value": item["value"],
                    "count": item["count"],
                    "selected": chosen.get(name, "").lower() == item["value"].lower(),
                    "href": "/catalog?" + urlencode({**chosen, name: item["value"]}),
                }
                for item in counts[:30]
            ]
        return Template(
            template_name="portal/catalog.html",
            context={
                "organization_name": state.settings.organization_name,
                "rows": [_row(entity) for entity in page["items"]],
                "total": page["totalItems"],
                "facets": facets,
                "chosen": chosen,
                "q": q or "",
                "clear_links": {
                    name: "/catalog?"
                    + urlencode(
                        {n: v for n, v in chosen.items() if n != name} | ({"q": q} if q else {})
                    )
                    for name in chosen
                },
                "next_href": "/catalog?"
                + urlencode(
                    {**chosen, **({"q": q} if q else {}), "cursor": page["pageInfo"]["nextCursor"]}
                )
                if page["pageInfo"].get("nextCursor")
                else None,
            },
        )

    @get("/catalog/{kind:str}/{namespace:str}/{name:str}", sync_to_thread=True)
    def entity_page(
        self,
        state: State,
        catalog_service: NamedDependency[CatalogService],
        kind: FromPath[str],
        namespace: FromPath[str],
        name: FromPath[str],
    ) -> Template:
        """One entity: overview, relations, API definition, links, processing errors."""
        ref = str(EntityRef.of(kind, namespace, name))
        entity = catalog_service.entity_by_ref(ref)
        if entity is None:
            raise NotFoundException(f"No entity named {ref}")
        relations: dict[str, list[dict[str, str]]] = {}
        for relation in entity.get("relations", []):
            target = relation["targetRef"]
            relations.setdefault(relation["type"], []).append(
                {"ref": target, "path": entity_path(target)}
            )
        spec = entity.get("spec", {})
        definition = spec.get("definition") if entity["kind"].lower() == "api" else None
        return Template(
            template_name="portal/entity.html",
            context={
                "organization_name": state.settings.organization_name,
                "entity": entity,
                "row": _row(entity),
                "spec": {k: v for k, v in spec.items() if isinstance(v, str) and k != "definition"},
                "relations": dict(sorted(relations.items())),
                "definition": definition if isinstance(definition, str) else None,
                "links": entity["metadata"].get("links", []),
                "annotations": entity["metadata"].get("annotations", {}),
                "errors": entity.get("status", {}).get("items", []),
                # What the active plugins add: tabs served by the plugin, overview cards.
                "plugin_tabs": plugin_hosting.entity_tabs(entity),
                "plugin_cards": plugin_hosting.entity_cards(entity),
            },
        )

    @get("/catalog-import", sync_to_thread=False)
    def import_form(self, state: State) -> Response[Any]:
        return _import_page(state, message=None, error=None)

    @post("/catalog-import", sync_to_thread=True)
    def register(
        self,
        request: Request[Any, Any, Any],
        state: State,
        db_session: NamedDependency[Session],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Register a location from the form; the double-submitted token guards the POST."""
        token = data.get("csrf_token", "")
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not token or not secrets.compare_digest(token, cookie):
            return _import_page(state, message=None, error="The form expired: submit it again.")
        principal = principal_of(request)
        if principal is None or not principal.has_role("member"):
            return _import_page(state, message=None, error="Registering needs the member role.")
        try:
            result = LocationService(db_session, state.settings).create(
                data.get("type", "url"),
                data.get("target", "").strip(),
                actor=f"{principal.kind}:{principal.subject}",
            )
        except CatalogError as error:
            db_session.rollback()
            return _import_page(state, message=None, error=str(error))
        location = result["location"]
        return Redirect(entity_path(location["entityRef"]))


def _import_page(state: State, *, message: str | None, error: str | None) -> Response[Any]:
    token = secrets.token_urlsafe(24)
    response = Template(
        template_name="portal/import.html",
        context={
            "organization_name": state.settings.organization_name,
            "csrf_token": token,
            "message": message,
            "error": error,
        },
        status_code=400 if error else 200,
    )
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="strict", path="/catalog-import"
    )
    return response
