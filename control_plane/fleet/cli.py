"""``backlot fleet``: the admin API from a terminal. Tables for people, ``--json`` for scripts.

Configured by ``BACKLOT_ADMIN_URL`` (the control plane's address) and ``BACKLOT_ADMIN_TOKEN``
(an operator token).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from control_plane.fleet.actions import ACTIONS

_TERMINAL = {"succeeded", "failed", "aborted"}


class Api:
    """A thin client: every error the API returns is shown as its message, and exits 1."""

    def __init__(self, client: httpx.Client, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(
                method, f"/admin/v1{path}", headers=self.headers, **kwargs
            )
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach the admin API: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise click.ClickException(f"{response.status_code}: {detail}")
        return response.json()


def _api(ctx: click.Context) -> Api:
    obj = ctx.ensure_object(dict)
    if "api" not in obj:
        url = os.environ.get("BACKLOT_ADMIN_URL", "")
        token = os.environ.get("BACKLOT_ADMIN_TOKEN", "")
        if not url or not token:
            raise click.ClickException(
                "set BACKLOT_ADMIN_URL (the control plane's address) and BACKLOT_ADMIN_TOKEN "
                "(an operator token: `backlot fleet token create`)"
            )
        obj["api"] = Api(httpx.Client(base_url=url, timeout=30), token)
    api: Api = obj["api"]
    return api


def _console() -> Console:
    return Console(soft_wrap=True)


def _emit(data: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json or table is None:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        _console().print(table)


def _params(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: use key=value", param_hint="--param")
        out[key] = value
    return out


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def filter_options(fn: Any) -> Any:
    for name, help_ in reversed(
        [
            ("state", "pending, provisioning, active, suspended, deleting, deleted, failed"),
            ("plan", "plan name"),
            ("release", "runtime release"),
            ("health", "failing, progressing, healthy, stopped"),
            ("region", "region"),
            ("cohort", "early, default, late"),
        ]
    ):
        fn = click.option(f"--{name}", multiple=True, help=f"Filter: {help_} (repeatable).")(fn)
    return click.option("-q", "slug_contains", default=None, help="Slug contains.")(fn)


def _filter(options: dict[str, Any]) -> dict[str, Any]:
    keys = ("state", "plan", "release", "health", "region", "cohort")
    out: dict[str, Any] = {k: list(options[k]) for k in keys if options.get(k)}
    if options.get("slug_contains"):
        out["slug_contains"] = options["slug_contains"]
    return out


@click.group()
def fleet() -> None:
    """Operate the fleet through the admin API."""


@fleet.command()
@json_option
@click.pass_context
def summary(ctx: click.Context, /, *, as_json: bool) -> None:
    """Counts by state, health, release and plan; tenants that need attention."""
    data = _api(ctx).call("GET", "/summary")
    if as_json:
        _emit(data, True)
        return
    console = _console()
    console.print(f"[bold]{data['total']} tenants[/bold]")
    for key in ("by_health", "by_state", "by_release", "by_plan"):
        parts = ", ".join(f"{k}: {v}" for k, v in data[key].items())
        console.print(f"  {key.removeprefix('by_')}: {parts or '-'}")
    rows = [
        [t["slug"], t["state"], t["health"], t["release"], t.get("failure_reason")]
        for t in data["needs_attention"]
    ]
    console.print(_table("Needs attention", ["slug", "state", "health", "release", "why"], rows))


@fleet.group()
def tenants() -> None:
    """List, inspect and act on tenants."""


@tenants.command("list")
@filter_options
@click.option(
    "--sort",
    default="health",
    help="created_at, slug, state, plan, release, ... (- for descending)",
)
@click.option("--page", default=1, type=int)
@click.option("--page-size", default=50, type=int)
@json_option
@click.pass_context
def list_tenants(
    ctx: click.Context, /, *, sort: str, page: int, page_size: int, as_json: bool, **filters: Any
) -> None:
    """Tenants matching every filter given."""
    params: dict[str, Any] = {
        **_filter(filters),
        "sort": sort,
        "page": page,
        "page_size": page_size,
    }
    if "slug_contains" in params:
        params["q"] = params.pop("slug_contains")
    data = _api(ctx).call("GET", "/tenants", params=params)
    rows = [
        [
            t["slug"],
            t["state"],
            t["health"],
            t["plan"],
            t["release"],
            t["region"],
            t["created_at"][:19],
        ]
        for t in data["items"]
    ]
    first = (page - 1) * page_size
    title = f"Tenants {first + 1}-{first + len(rows)} of {data['total']}"
    _emit(
        data,
        as_json,
        _table(title, ["slug", "state", "health", "plan", "release", "region", "created"], rows),
    )


@tenants.command("show")
@click.argument("ref")
@json_option
@click.pass_context
def show_tenant(ctx: click.Context, /, *, ref: str, as_json: bool) -> None:
    """One tenant: spec, status, conditions, events."""
    data = _api(ctx).call("GET", f"/tenants/{ref}")
    if as_json:
        _emit(data, True)
        return
    console = _console()
    console.print(f"[bold]{data['slug']}[/bold] ({data['id']}) {data['state']} / {data['health']}")
    console.print(f"  spec: {json.dumps(data['spec'])}")
    console.print(f"  status: {json.dumps(data['status'])}")
    console.print(
        _table(
            "Conditions",
            ["type", "status", "reason", "message"],
            [[c["type"], c["status"], c["reason"], c["message"]] for c in data["conditions"]],
        )
    )
    console.print(
        _table(
            "Events",
            ["at", "to", "reason", "actor", "message"],
            [
                [e["at"][:19], e["to_state"], e["reason"], e["actor"], e["message"]]
                for e in data["events"]
            ],
        )
    )


_ACTION_HELP = {
    "suspend": "Suspend a tenant (the operator's hold; -p reason=...).",
    "resume": "Lift the operator's suspension of a tenant.",
    "delete": "Delete a tenant; its data is kept for the retention period (-p reason=...).",
    "restore": "Restore a deleted tenant within the retention period.",
    "reconcile": "Reconcile a tenant now (a failed one is retried).",
    "set-size-tier": "Change a tenant's size tier (-p size_tier=small|medium|large).",
    "pin-release": "Pin a tenant to a release through rollouts (-p release=1.2.0).",
    "set-cohort": "Put a tenant in rollouts' early or late waves (-p cohort=early|default|late).",
}


def _action_command(name: str) -> click.Command:
    @click.command(name, help=_ACTION_HELP.get(name, name))
    @click.argument("ref")
    @click.option(
        "--param",
        "-p",
        "pairs",
        multiple=True,
        help="key=value, e.g. reason=..., size_tier=medium, release=1.2.0",
    )
    @json_option
    @click.pass_context
    def command(ctx: click.Context, /, *, ref: str, pairs: tuple[str, ...], as_json: bool) -> None:
        data = _api(ctx).call(
            "POST", f"/tenants/{ref}/actions/{name}", json={"params": _params(pairs)}
        )
        if as_json:
            _emit(data, True)
        else:
            click.echo(
                f"{data['slug']}: {name} accepted "
                f"(now {data['state']}; operation {data['operation_id'] or '-'})"
            )

    return command


for _name in ACTIONS:
    tenants.add_command(_action_command(_name))


@fleet.command()
@click.argument("action", type=click.Choice(sorted(ACTIONS)))
@filter_options
@click.option("--param", "-p", "pairs", multiple=True, help="key=value for the action.")
@click.option("--execute", is_flag=True, help="Act for real; without it this is a dry run.")
@json_option
@click.pass_context
def bulk(
    ctx: click.Context,
    /,
    *,
    action: str,
    pairs: tuple[str, ...],
    execute: bool,
    as_json: bool,
    **filters: Any,
) -> None:
    """One action over every tenant the filters match (a dry run unless --execute)."""
    body = {"filter": _filter(filters), "params": _params(pairs), "dry_run": not execute}
    data = _api(ctx).call("POST", f"/bulk/{action}", json=body)
    if as_json:
        _emit(data, True)
        return
    if data["dry_run"]:
        click.echo(f"dry run: {action} would act on {data['matched']} tenant(s):")
        for slug in data["tenants"]:
            click.echo(f"  {slug}")
        click.echo("run again with --execute to act")
        return
    rows = [
        [r["slug"], "ok" if r["ok"] else "refused", r["state"], r["detail"]]
        for r in data["results"]
    ]
    _console().print(
        _table(
            f"{action} on {data['matched']} tenant(s)", ["slug", "result", "state", "detail"], rows
        )
    )
    if any(not r["ok"] for r in data["results"]):
        sys.exit(1)


@fleet.group()
def releases() -> None:
    """Runtime releases."""


@releases.command("list")
@json_option
@click.pass_context
def list_releases(ctx: click.Context, /, *, as_json: bool) -> None:
    data = _api(ctx).call("GET", "/releases")
    rows = [[r["version"], r["image"], r["created_at"][:19], r["notes"][:60]] for r in data]
    _emit(data, as_json, _table("Releases", ["version", "image", "registered", "notes"], rows))


@releases.command("register")
@click.argument("version")
@click.argument("image")
@click.option("--notes", default="")
@click.option("--plugin", "plugins", multiple=True, help="package=range the release works with.")
@json_option
@click.pass_context
def register_release(
    ctx: click.Context,
    /,
    *,
    version: str,
    image: str,
    notes: str,
    plugins: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register VERSION, deployed from IMAGE (a full image reference)."""
    body = {
        "version": version,
        "image": image,
        "notes": notes,
        "plugin_compatibility": _params(plugins),
    }
    data = _api(ctx).call("POST", "/releases", json=body)
    _emit(data, as_json) if as_json else click.echo(
        f"registered {data['version']} ({data['image']})"
    )


@fleet.group()
def rollouts() -> None:
    """Move tenants to a release in waves."""


def _waves(specs: tuple[str, ...]) -> list[dict[str, Any]] | None:
    if not specs:
        return None
    waves: list[dict[str, Any]] = []
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep:
            raise click.BadParameter(
                f"{spec!r}: use name=percent or name=cohort", param_hint="--wave"
            )
        try:
            waves.append({"name": name, "percent": float(value)})
        except ValueError:
            waves.append({"name": name, "cohort": value})
    return waves


def _rollout_table(data: dict[str, Any]) -> Table:
    rows = [
        [
            w["index"] + 1,
            w["name"],
            w.get("percent", w.get("cohort")),
            w["tenants"],
            ", ".join(f"{k}: {v}" for k, v in w["states"].items()),
        ]
        for w in data["waves"]
    ]
    title = f"Rollout {data['id']} to {data['release']}: {data['state']} {data['message']}"
    return _table(title, ["#", "wave", "size", "tenants", "states"], rows)


@rollouts.command("start")
@click.argument("release")
@click.option(
    "--wave",
    "waves",
    multiple=True,
    help="name=percent (cumulative) or name=cohort; repeat per wave. Default 1, 10, 50, 100 %.",
)
@filter_options
@click.option(
    "--ready-deadline",
    default=600.0,
    type=float,
    help="Seconds a wave's tenants have to become Ready.",
)
@click.option("--watch", is_flag=True, help="Show progress until the rollout ends.")
@json_option
@click.pass_context
def start_rollout(
    ctx: click.Context,
    /,
    *,
    release: str,
    waves: tuple[str, ...],
    ready_deadline: float,
    watch: bool,
    as_json: bool,
    **filters: Any,
) -> None:
    body = {
        "release": release,
        "waves": _waves(waves),
        "selector": _filter(filters),
        "ready_deadline_seconds": ready_deadline,
    }
    data = _api(ctx).call("POST", "/rollouts", json=body)
    if watch:
        _watch(ctx, data["id"], as_json)
        return
    _emit(data, as_json, _rollout_table(data))


@rollouts.command("list")
@json_option
@click.pass_context
def list_rollouts(ctx: click.Context, /, *, as_json: bool) -> None:
    data = _api(ctx).call("GET", "/rollouts")
    rows = [
        [
            r["id"],
            r["release"],
            r["state"],
            f"{r['current_wave'] + 1}/{len(r['waves'])}",
            r["tenants"],
            r["message"],
        ]
        for r in data
    ]
    _emit(
        data,
        as_json,
        _table("Rollouts", ["id", "release", "state", "wave", "tenants", "message"], rows),
    )


@rollouts.command("show")
@click.argument("rollout_id")
@json_option
@click.pass_context
def show_rollout(ctx: click.Context, /, *, rollout_id: str, as_json: bool) -> None:
    data = _api(ctx).call("GET", f"/rollouts/{rollout_id}")
    _emit(data, as_json, _rollout_table(data))


def _watch(ctx: click.Context, rollout_id: str, as_json: bool, interval: float = 2.0) -> None:
    api = _api(ctx)
    data = api.call("GET", f"/rollouts/{rollout_id}")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        bars = {
            w["index"]: progress.add_task(f"wave {w['index'] + 1} {w['name']}", total=w["tenants"])
            for w in data["waves"]
        }
        while True:
            for wave in data["waves"]:
                finished = sum(
                    v for k, v in wave["states"].items() if k in ("done", "rolled_back", "failed")
                )
                progress.update(bars[wave["index"]], completed=finished)
            if data["state"] in _TERMINAL:
                break
            time.sleep(interval)
            data = api.call("GET", f"/rollouts/{rollout_id}")
    _emit(data, as_json, _rollout_table(data))
    if data["state"] != "succeeded":
        sys.exit(1)


@rollouts.command("watch")
@click.argument("rollout_id")
@click.option("--interval", default=2.0, type=float)
@json_option
@click.pass_context
def watch_rollout(
    ctx: click.Context, /, *, rollout_id: str, interval: float, as_json: bool
) -> None:
    """Progress bars per wave until the rollout ends; exits 1 unless it succeeded."""
    _watch(ctx, rollout_id, as_json, interval)


def _control(verb: str) -> click.Command:
    @click.command(verb, help=f"{verb.capitalize()} a rollout.")
    @click.argument("rollout_id")
    @json_option
    @click.pass_context
    def command(ctx: click.Context, /, *, rollout_id: str, as_json: bool) -> None:
        data = _api(ctx).call("POST", f"/rollouts/{rollout_id}/{verb}")
        _emit(data, as_json) if as_json else click.echo(f"rollout {data['id']}: {data['state']}")

    return command


for _verb in ("pause", "resume", "abort"):
    rollouts.add_command(_control(_verb))


@fleet.command("audit")
@click.option("--actor")
@click.option("--tenant")
@click.option("--action")
@click.option("--since", type=click.DateTime())
@click.option("--limit", default=50, type=int)
@json_option
@click.pass_context
def audit_log(
    ctx: click.Context,
    /,
    *,
    actor: str | None,
    tenant: str | None,
    action: str | None,
    since: dt.datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """The audit log, newest first."""
    params: dict[str, Any] = {"limit": limit}
    for key, value in (("actor", actor), ("tenant", tenant), ("action", action)):
        if value:
            params[key] = value
    if since:
        params["since"] = since.replace(tzinfo=since.tzinfo or dt.UTC).isoformat()
    data = _api(ctx).call("GET", "/audit", params=params)
    rows = [
        [e["at"][:19], e["actor"], e["action"], e["target"], json.dumps(e["details"])[:80]]
        for e in data
    ]
    _emit(data, as_json, _table("Audit log", ["at", "actor", "action", "target", "details"], rows))


@fleet.group()
def token() -> None:
    """Operator tokens (run where the control plane's database is reachable)."""


@token.command("create")
@click.option("--name", required=True)
@click.option("--operator", required=True, help="Who holds it, e.g. an e-mail address.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(["read", "operate", "release", "billing-admin"]),
)
@click.option("--expires-days", type=int, default=None)
def create_token(
    name: str, operator: str, scopes: tuple[str, ...], expires_days: int | None
) -> None:
    """Issue a token; it is printed once and only its hash is kept."""
    from control_plane.audit import service as audit  # noqa: PLC0415 - only this command needs the database
    from control_plane.core.database import build_engine, build_session_factory, unit_of_work  # noqa: PLC0415
    from control_plane.core.settings import load_settings  # noqa: PLC0415
    from control_plane.fleet import operators  # noqa: PLC0415
    from control_plane.models import import_all  # noqa: PLC0415

    import_all()
    settings = load_settings()
    sessions = build_session_factory(build_engine(settings.resolved_database_url))
    with unit_of_work(sessions) as session:
        row, plain = operators.issue(
            session,
            name=name,
            operator=operator,
            scopes=list(scopes),
            expires_in=dt.timedelta(days=expires_days) if expires_days else None,
        )
        audit.record(
            session,
            actor="cli:token-create",
            action="operator.token-issue",
            target=operator,
            details={"name": name, "scopes": sorted(scopes), "token_id": str(row.id)},
        )
    click.echo(plain)
