"""Scorecards (premium): checks over catalog data, scored bronze, silver and gold per entity,
with a view per owning team. Computed from the catalog when asked, so always current."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import get
from litestar.exceptions import NotFoundException
from litestar.response import Template
from sqlalchemy.orm import Session

from tenant_runtime.plugins.application import (
    all_entities,
    annotation,
    build_plugin_app,
    entity_path,
    entity_ref_of,
    find_entity,
)
from tenant_runtime.plugins.spec import Entity, EntityCard, EntityTab, PluginContext, PluginSpec

SCORED_KINDS = ("component", "api", "resource", "system")


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    level: str  # the level this check is needed for
    passes: Callable[[Entity], bool]


def _spec(entity: Entity) -> dict[str, Any]:
    spec = entity.get("spec")
    return spec if isinstance(spec, dict) else {}


CHECKS = (
    Check("owner", "Has an owner", "bronze", lambda e: bool(_spec(e).get("owner"))),
    Check(
        "description",
        "Has a description",
        "bronze",
        lambda e: bool(str(e["metadata"].get("description", "")).strip()),
    ),
    Check("lifecycle", "Has a lifecycle", "silver", lambda e: bool(_spec(e).get("lifecycle"))),
    Check("system", "Belongs to a system", "silver", lambda e: bool(_spec(e).get("system"))),
    Check(
        "docs",
        "Has TechDocs",
        "gold",
        lambda e: bool(annotation(e, "backstage.io/techdocs-ref")),
    ),
    Check("tags", "Has tags", "gold", lambda e: bool(e["metadata"].get("tags"))),
)
LEVELS = ("bronze", "silver", "gold")


class CheckResult(msgspec.Struct):
    id: str
    title: str
    level: str
    passed: bool


class Scorecard(msgspec.Struct):
    entity_ref: str
    owner: str
    level: str | None
    score: int
    checks: list[CheckResult]


def score(entity: Entity) -> Scorecard:
    results = [CheckResult(c.id, c.title, c.level, c.passes(entity)) for c in CHECKS]
    level: str | None = None
    # A level is reached when its checks and those of every level below it pass.
    for candidate in LEVELS:
        needed = LEVELS[: LEVELS.index(candidate) + 1]
        if all(r.passed for r in results if r.level in needed):
            level = candidate
    owner = _spec(entity).get("owner")
    return Scorecard(
        entity_ref=entity_ref_of(entity),
        owner=owner if isinstance(owner, str) else "",
        level=level,
        score=round(100 * sum(r.passed for r in results) / len(results)),
        checks=results,
    )


def scorecards(session: Session) -> list[Scorecard]:
    return [score(entity) for kind in SCORED_KINDS for entity in all_entities(session, kind)]


class TeamScore(msgspec.Struct):
    team: str
    entities: int
    average_score: int
    levels: dict[str, int]


def team_view(cards: list[Scorecard]) -> list[TeamScore]:
    by_team: dict[str, list[Scorecard]] = defaultdict(list)
    for card in cards:
        by_team[card.owner or "(no owner)"].append(card)
    return [
        TeamScore(
            team=team,
            entities=len(members),
            average_score=round(sum(c.score for c in members) / len(members)),
            levels={lvl: sum(1 for c in members if c.level == lvl) for lvl in LEVELS},
        )
        for team, members in sorted(by_team.items())
    ]


@get("/api/scorecards", sync_to_thread=True)
def list_scorecards(db_session: Session) -> list[Scorecard]:
    return scorecards(db_session)


@get("/api/teams", sync_to_thread=True)
def list_teams(db_session: Session) -> list[TeamScore]:
    return team_view(scorecards(db_session))


@get("/", sync_to_thread=True)
def overview(db_session: Session) -> Template:
    cards = scorecards(db_session)
    return Template(
        template_name="plugins/scorecards/overview.html",
        context={"cards": cards, "teams": team_view(cards), "levels": LEVELS},
    )


@get("/entity/{kind:str}/{namespace:str}/{name:str}", sync_to_thread=True)
def entity_page(db_session: Session, kind: str, namespace: str, name: str) -> Template:
    entity = find_entity(db_session, f"{kind}:{namespace}/{name}")
    if entity is None:
        raise NotFoundException(f"no entity {kind}:{namespace}/{name} in the catalog")
    return Template(template_name="plugins/scorecards/entity.html", context={"card": score(entity)})


def _tabs(_: PluginContext, entity: Entity) -> list[EntityTab]:
    return [
        EntityTab("scorecards", "Scorecard", f"/plugins/scorecards/entity/{entity_path(entity)}")
    ]


def _cards(_: PluginContext, entity: Entity) -> list[EntityCard]:
    card = score(entity)
    return [
        EntityCard(
            "scorecards",
            "Scorecard",
            [f"level: {card.level or 'none yet'}", f"score: {card.score}%"],
            href=f"/plugins/scorecards/entity/{entity_path(entity)}",
        )
    ]


def _build(context: PluginContext) -> Any:
    return build_plugin_app(context, [list_scorecards, list_teams, overview, entity_page])


plugin = PluginSpec(
    id="scorecards",
    name="Scorecards",
    version="1.0.0",
    tier="premium",
    description="Checks over your catalog scored bronze, silver and gold, with a team view.",
    runtime_releases=">=0.1,<1",
    build_app=_build,
    entity_tabs=_tabs,
    entity_cards=_cards,
)
