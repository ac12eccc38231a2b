"""One mounted dispatcher for every plugin's routes, so plugins come and go without a restart.

``/plugins/<id>/x`` reaches the active plugin's app at ``/x`` and ``/api/plugins/<id>/x`` at
``/api/x``. An inactive or unknown plugin answers 404. ``/plugins/`` lists the plugins and
``/api/plugins/`` says what runs and why the rest does not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import asgi
from litestar.connection import ASGIConnection
from litestar.types import Receive, Scope, Send

from tenant_runtime.auth.guard import principal_of
from tenant_runtime.plugins.host import PluginHost

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
_pages = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]))


ASGI_SCOPE_KEYS = (
    "type",
    "asgi",
    "http_version",
    "method",
    "scheme",
    "server",
    "client",
    "query_string",
    "headers",
    "extensions",
    "principal",
)


def _host(scope: Scope) -> PluginHost:
    host: PluginHost = scope["app"].state.plugin_host
    return host


def _original_path(scope: Scope) -> str:
    # Litestar strips the mount prefix from "path" (and adds a slash); the raw path is exact.
    raw = scope.get("raw_path") or scope["path"].encode()
    return unquote(raw.decode("latin-1").split("?", 1)[0])


async def _send(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _refuse(send: Send, status: int, detail: str, api: bool) -> None:
    if api:
        body = json.dumps({"status_code": status, "detail": detail}).encode()
        await _send(send, status, body, "application/json")
    else:
        page = f"<!doctype html><h1>{status}</h1><p>{detail}</p>".encode()
        await _send(send, status, page, "text/html")


async def _not_found(send: Send, plugin_id: str, api: bool) -> None:
    await _refuse(send, 404, f"plugin {plugin_id!r} is not active in this portal", api)


READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _credential_problem(scope: Scope, public: bool) -> tuple[int, str] | None:
    """Why this request may not reach the plugin (status, message), or None if it may."""
    if public:
        return None
    principal = principal_of(ASGIConnection(scope))
    if principal is None:
        return 401, "Missing or invalid credentials: sign in or send a token"
    if scope.get("method", "GET") not in READING_METHODS and not principal.has_role("member"):
        return 403, "This needs the member role"
    return None


def _status_document(host: PluginHost) -> dict[str, Any]:
    entitlements = host.entitlements
    return {
        "mode": host.mode,
        "release": host.release,
        "entitlements_expire_at": entitlements.expires_at if entitlements else None,
        "last_refusal": host.last_refusal,
        "plugins": [
            {
                "id": s.id,
                "name": s.name,
                "tier": s.tier,
                "version": s.version,
                "state": s.state,
                "reason": s.reason,
            }
            for s in host.statuses()
        ],
        "available": sorted(host.available),
    }


async def _dispatch(scope: Scope, receive: Receive, send: Send, prefix: str) -> None:
    host = _host(scope)
    path = _original_path(scope)
    rest = path[len(prefix) :].lstrip("/")
    plugin_id, _, tail = rest.partition("/")
    api = prefix.startswith("/api")
    if not plugin_id:
        problem = _credential_problem(scope, public=False)
        if problem is not None:
            await _refuse(send, *problem, api)
            return
        if api:
            body = json.dumps(_status_document(host)).encode()
            await _send(send, 200, body, "application/json")
        else:
            page = _pages.get_template("plugins/index.html").render(
                organization_name=scope["app"].state.settings.organization_name,
                statuses=host.statuses(),
                mode=host.mode,
            )
            await _send(send, 200, page.encode(), "text/html; charset=utf-8")
        return
    active = host.active_plugin(plugin_id)
    if active is None:
        await _not_found(send, plugin_id, api)
        return
    own_path = ("/api/" if api else "/") + tail
    problem = _credential_problem(scope, own_path in active.spec.public_paths)
    if problem is not None:
        await _refuse(send, *problem, api)
        return
    app = active.app
    # The plugin's app sees its own paths ("/x", "/api/x") below a root path, which per the
    # ASGI spec stays part of "path".
    root = str(scope.get("root_path", "")) + f"{prefix}/{plugin_id}"
    full = root + ("/api/" if api else "/") + tail
    # Only the ASGI keys pass: the portal app's routing state must not leak into the plugin's.
    parent: dict[str, Any] = dict(scope)
    child = {key: parent[key] for key in ASGI_SCOPE_KEYS if key in parent}
    child.update(path=full, raw_path=full.encode(), root_path=root, state={})
    await app(child, receive, send)  # type: ignore[arg-type]


@asgi("/plugins", is_mount=True, copy_scope=True)
async def plugin_pages(scope: Scope, receive: Receive, send: Send) -> None:
    await _dispatch(scope, receive, send, "/plugins")


@asgi("/api/plugins", is_mount=True, copy_scope=True)
async def plugin_apis(scope: Scope, receive: Receive, send: Send) -> None:
    await _dispatch(scope, receive, send, "/api/plugins")
