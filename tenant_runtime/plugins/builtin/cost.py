"""Cloud cost: costs per entity and per team from an uploaded or pushed cost report.

A report is CSV (header ``period,service,amount,currency,entity,team``) or a JSON list of the
same fields. ``entity`` or ``team`` (at least one) says whose cost a line is; a line with only
an entity counts for the entity's owner. A report with a bad line stores nothing and says
which line is wrong.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import Parameter
from litestar.response import Template
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenant_runtime.catalog.refs import InvalidEntityRef, parse_entity_ref
from tenant_runtime.plugins.application import (
    all_entities,
    build_plugin_app,
    entity_path,
    entity_ref_of,
    find_entity,
)
from tenant_runtime.plugins.builtin.models import CostLine
from tenant_runtime.plugins.spec import Entity, EntityCard, EntityTab, PluginContext, PluginSpec

PERIOD = re.compile(r"\d{4}-\d{2}(-\d{2})?")
MAX_LINES = 100_000


class ReportAccepted(msgspec.Struct):
    report: str
    lines: int


class Total(msgspec.Struct):
    key: str
    period: str
    amount: str
    currency: str


def _line(number: int, row: dict[str, Any], report: str, now: datetime) -> CostLine:
    def fail(why: str) -> ValidationException:
        return ValidationException(f"cost report line {number}: {why}")

    period = str(row.get("period") or "").strip()
    if not PERIOD.fullmatch(period):
        raise fail("period must be YYYY-MM or YYYY-MM-DD")
    try:
        amount = Decimal(str(row.get("amount", "")).strip())
    except InvalidOperation:
        raise fail("amount must be a number") from None
    if not amount.is_finite():
        raise fail("amount must be a number")
    currency = str(row.get("currency") or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise fail("currency must be a three-letter code such as USD")
    entity = str(row.get("entity") or "").strip()
    team = str(row.get("team") or "").strip()
    if not entity and not team:
        raise fail("give an entity or a team")
    entity_ref = None
    if entity:
        try:
            entity_ref = str(parse_entity_ref(entity, default_kind="component"))
        except InvalidEntityRef as exc:
            raise fail(str(exc)) from None
    return CostLine(
        report=report,
        period=period,
        entity_ref=entity_ref,
        team=team.lower() or None,
        service=str(row.get("service") or "").strip(),
        amount=amount,
        currency=currency,
        uploaded_at=now,
    )


def parse_report(body: bytes, content_type: str) -> list[dict[str, Any]]:
    if "json" in content_type:
        try:
            rows = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise ValidationException(f"the cost report is not valid JSON: {exc}") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValidationException("a JSON cost report is a list of objects")
        return rows
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationException("a CSV cost report must be UTF-8") from None
    return list(csv.DictReader(io.StringIO(text)))


def store_report(session: Session, rows: list[dict[str, Any]]) -> ReportAccepted:
    if not rows:
        raise ValidationException("the cost report has no lines")
    if len(rows) > MAX_LINES:
        raise ValidationException(f"a cost report holds at most {MAX_LINES} lines; split it")
    report = uuid.uuid4().hex
    now = datetime.now(UTC)
    # Every line is checked before any is stored: a bad report leaves nothing behind.
    lines = [_line(number, row, report, now) for number, row in enumerate(rows, start=1)]
    session.add_all(lines)
    session.flush()
    return ReportAccepted(report=report, lines=len(lines))


@post("/api/reports", status_code=201)
async def upload_report(request: Request[Any, Any, Any], plugin: PluginContext) -> ReportAccepted:
    body = await request.body()
    rows = parse_report(body, request.headers.get("content-type", ""))
    with plugin.sessions() as session:
        accepted = store_report(session, rows)
        session.commit()
    return accepted


def _owner(entity: Entity) -> str:
    owner = (entity.get("spec") or {}).get("owner")
    if not isinstance(owner, str) or not owner:
        return ""
    try:
        return parse_entity_ref(owner, default_kind="group").name
    except InvalidEntityRef:
        return ""


def _totals(pairs: list[tuple[str, CostLine]]) -> list[Total]:
    sums: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for key, line in pairs:
        sums[(key, line.period, line.currency)] += line.amount
    return [
        Total(key=k, period=p, amount=f"{amount:.2f}", currency=c)
        for (k, p, c), amount in sorted(sums.items())
    ]


def entity_costs(session: Session, entity_ref: str) -> list[Total]:
    lines = session.scalars(select(CostLine).where(CostLine.entity_ref == entity_ref.lower()))
    return _totals([(entity_ref.lower(), line) for line in lines])


def team_costs(session: Session) -> list[Total]:
    owners = {entity_ref_of(e): _owner(e) for e in all_entities(session)}
    pairs = []
    for line in session.scalars(select(CostLine)):
        team = line.team or owners.get(line.entity_ref or "", "") or "(unowned)"
        pairs.append((team, line))
    return _totals(pairs)


@get("/api/costs", sync_to_thread=True)
def costs_of_entity(
    db_session: Session, entity: Annotated[str, Parameter(query="entity")]
) -> list[Total]:
    try:
        ref = str(parse_entity_ref(entity, default_kind="component"))
    except InvalidEntityRef as exc:
        raise ValidationException(str(exc)) from None
    return entity_costs(db_session, ref)


@get("/api/teams", sync_to_thread=True)
def costs_of_teams(db_session: Session) -> list[Total]:
    return team_costs(db_session)


@get("/", sync_to_thread=True)
def overview(db_session: Session) -> Template:
    return Template(
        template_name="plugins/cost/teams.html", context={"totals": team_costs(db_session)}
    )


@get("/entity/{kind:str}/{namespace:str}/{name:str}", sync_to_thread=True)
def entity_page(db_session: Session, kind: str, namespace: str, name: str) -> Template:
    entity = find_entity(db_session, f"{kind}:{namespace}/{name}")
    if entity is None:
        raise NotFoundException(f"no entity {kind}:{namespace}/{name} in the catalog")
    ref = entity_ref_of(entity)
    return Template(
        template_name="plugins/cost/entity.html",
        context={"entity_ref": ref, "totals": entity_costs(db_session, ref)},
    )


def _tabs(_: PluginContext, entity: Entity) -> list[EntityTab]:
    return [EntityTab("cost", "Cost", f"/plugins/cost/entity/{entity_path(entity)}")]


def _cards(context: PluginContext, entity: Entity) -> list[EntityCard]:
    with context.sessions() as session:
        totals = entity_costs(session, entity_ref_of(entity))
    if not totals:
        return [EntityCard("cost", "Cost", ["No costs reported yet."])]
    latest = totals[-1]
    return [EntityCard("cost", "Cost", [f"{latest.period}: {latest.amount} {latest.currency}"])]


def _build(context: PluginContext) -> Any:
    return build_plugin_app(
        context, [upload_report, costs_of_entity, costs_of_teams, overview, entity_page]
    )


plugin = PluginSpec(
    id="cost",
    name="Cloud cost",
    version="1.0.0",
    tier="free",
    description="Costs per entity and team from an uploaded or pushed cost report.",
    runtime_releases=">=0.1,<1",
    build_app=_build,
    entity_tabs=_tabs,
    entity_cards=_cards,
)
