"""CI/CD status: pipeline runs pushed by the CI system through a signed webhook, per entity.

The CI system signs each delivery with the install's secret (from the plugin's config, which
the control plane derives per install): header ``X-Backlot-Signature: sha256=<hex>``, an
HMAC-SHA256 of the raw body. A run is keyed by (entity, pipeline, run id); a later event for
the same run replaces its status.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.exceptions import NotAuthorizedException, NotFoundException, ValidationException
from litestar.params import Parameter
from litestar.response import Template
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenant_runtime.plugins.application import (
    build_plugin_app,
    entity_path,
    entity_ref_of,
    find_entity,
)
from tenant_runtime.plugins.builtin.models import CiRun
from tenant_runtime.plugins.spec import Entity, EntityCard, EntityTab, PluginContext, PluginSpec

SIGNATURE_HEADER = "x-backlot-signature"


class CicdConfig(msgspec.Struct, forbid_unknown_fields=True):
    webhook_secret: Annotated[str, msgspec.Meta(min_length=16)]


class RunEvent(msgspec.Struct, forbid_unknown_fields=True):
    entity_ref: str
    pipeline: str
    run_id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    branch: str = ""
    commit: str = ""
    url: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RunOut(msgspec.Struct):
    entity_ref: str
    pipeline: str
    run_id: str
    status: str
    branch: str
    commit: str
    url: str
    started_at: str | None
    finished_at: str | None


def sign(secret: str, body: bytes) -> str:
    """The header value a CI system sends with ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _out(run: CiRun) -> RunOut:
    return RunOut(
        entity_ref=run.entity_ref,
        pipeline=run.pipeline,
        run_id=run.run_id,
        status=run.status,
        branch=run.branch,
        commit=run.commit_sha,
        url=run.url,
        started_at=run.started_at.isoformat() if run.started_at else None,
        finished_at=run.finished_at.isoformat() if run.finished_at else None,
    )


def runs_of(session: Session, entity_ref: str, limit: int = 50) -> list[CiRun]:
    return list(
        session.scalars(
            select(CiRun)
            .where(CiRun.entity_ref == entity_ref.lower())
            .order_by(CiRun.received_at.desc(), CiRun.id.desc())
            .limit(limit)
        )
    )


@post("/api/webhook", status_code=202)
async def receive_run(request: Request[Any, Any, Any], plugin: PluginContext) -> dict[str, str]:
    # The signature covers the raw bytes, so they are read before any parsing.
    body = await request.body()
    expected = sign(plugin.config.webhook_secret, body)
    if not hmac.compare_digest(expected, request.headers.get(SIGNATURE_HEADER, "")):
        raise NotAuthorizedException("the delivery's X-Backlot-Signature does not match its body")
    try:
        event = msgspec.json.decode(body, type=RunEvent)
    except msgspec.DecodeError as exc:
        raise ValidationException(f"the run event is not valid: {exc}") from None
    with plugin.sessions() as session:
        _store(session, event)
        session.commit()
    return {"status": "accepted"}


def _store(session: Session, event: RunEvent) -> None:
    ref = event.entity_ref.lower()
    run = session.scalar(
        select(CiRun).where(
            CiRun.entity_ref == ref, CiRun.pipeline == event.pipeline, CiRun.run_id == event.run_id
        )
    )
    if run is None:
        run = CiRun(entity_ref=ref, pipeline=event.pipeline, run_id=event.run_id)
        session.add(run)
    run.status = event.status
    run.branch = event.branch
    run.commit_sha = event.commit
    run.url = event.url
    run.started_at = event.started_at
    run.finished_at = event.finished_at
    run.received_at = datetime.now(UTC)
    session.flush()


@get("/api/runs", sync_to_thread=True)
def list_runs(
    db_session: Session, entity: Annotated[str, Parameter(query="entity")]
) -> list[RunOut]:
    return [_out(run) for run in runs_of(db_session, entity)]


@get("/entity/{kind:str}/{namespace:str}/{name:str}", sync_to_thread=True)
def entity_page(db_session: Session, kind: str, namespace: str, name: str) -> Template:
    entity = find_entity(db_session, f"{kind}:{namespace}/{name}")
    if entity is None:
        raise NotFoundException(f"no entity {kind}:{namespace}/{name} in the catalog")
    ref = entity_ref_of(entity)
    return Template(
        template_name="plugins/cicd/entity.html",
        context={"entity_ref": ref, "runs": [_out(run) for run in runs_of(db_session, ref)]},
    )


def _tabs(_: PluginContext, entity: Entity) -> list[EntityTab]:
    return [EntityTab("cicd", "CI/CD", f"/plugins/cicd/entity/{entity_path(entity)}")]


def _cards(context: PluginContext, entity: Entity) -> list[EntityCard]:
    with context.sessions() as session:
        latest = runs_of(session, entity_ref_of(entity), limit=1)
    if not latest:
        return [EntityCard("cicd", "CI/CD", ["No runs reported yet."])]
    run = latest[0]
    return [
        EntityCard(
            "cicd",
            "CI/CD",
            [f"{run.pipeline} #{run.run_id}: {run.status}", f"branch {run.branch or '-'}"],
            href=f"/plugins/cicd/entity/{entity_path(entity)}",
        )
    ]


def _build(context: PluginContext) -> Any:
    return build_plugin_app(context, [receive_run, list_runs, entity_page])


plugin = PluginSpec(
    id="cicd",
    name="CI/CD status",
    version="1.0.0",
    tier="free",
    description="Pipeline runs from your CI system, pushed through a signed webhook, per entity.",
    runtime_releases=">=0.1,<1",
    build_app=_build,
    config_schema=CicdConfig,
    public_paths=frozenset({"/api/webhook"}),
    entity_tabs=_tabs,
    entity_cards=_cards,
)
