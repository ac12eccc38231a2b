"""TechDocs: Markdown documentation from each entity's source, rendered and searchable.

An entity opts in with ``backstage.io/techdocs-ref: dir:<path>``, relative to the directory
of its ``file:`` location (``backstage.io/managed-by-location``). Pages are the ``*.md``
files under ``<path>/docs`` (MkDocs' layout), or ``<path>/README.md`` when there is no docs
folder. A background job keeps the pages in the tenant database for search; a page is
rendered with markdown-it with raw HTML off, so a document cannot inject script.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import Parameter
from litestar.response import Template
from markdown_it import MarkdownIt
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from tenant_runtime.plugins.application import (
    all_entities,
    annotation,
    build_plugin_app,
    entity_path,
    entity_ref_of,
    find_entity,
)
from tenant_runtime.plugins.builtin.models import DocPage
from tenant_runtime.plugins.spec import (
    Entity,
    EntityCard,
    EntityTab,
    Job,
    PluginContext,
    PluginSpec,
)

TECHDOCS_REF = "backstage.io/techdocs-ref"
LOCATION = "backstage.io/managed-by-location"
MAX_PAGE_BYTES = 1_000_000

_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def docs_directory(entity: Entity) -> Path | None:
    """Where the entity's docs live on disk, or None when it has no local TechDocs."""
    ref = annotation(entity, TECHDOCS_REF)
    location = annotation(entity, LOCATION)
    if not isinstance(ref, str) or not ref.startswith("dir:"):
        return None
    if not isinstance(location, str) or not location.startswith("file:"):
        return None
    base = Path(location.removeprefix("file:")).parent
    root = (base / ref.removeprefix("dir:")).resolve()
    # The ref must stay inside the location's directory: "dir:../../etc" reads nothing.
    if not root.is_relative_to(base.resolve()):
        return None
    return root


def read_pages(root: Path) -> list[tuple[str, str, str]]:
    """(path, title, markdown) of each page under ``root``."""
    docs = root / "docs"
    files = sorted(docs.rglob("*.md")) if docs.is_dir() else [root / "README.md"]
    pages = []
    for file in files:
        if not file.is_file() or file.stat().st_size > MAX_PAGE_BYTES:
            continue
        resolved = file.resolve()
        if not resolved.is_relative_to(root):
            continue
        body = resolved.read_text(encoding="utf-8", errors="replace")
        relative = str(resolved.relative_to(docs if docs.is_dir() else root))
        title = next(
            (line.lstrip("# ").strip() for line in body.splitlines() if line.startswith("# ")),
            relative,
        )
        pages.append((relative, title[:255], body))
    return pages


def index_entity(session: Session, entity: Entity) -> int:
    """Replace the stored pages of ``entity`` with what its source holds now."""
    ref = entity_ref_of(entity)
    root = docs_directory(entity)
    session.execute(delete(DocPage).where(DocPage.entity_ref == ref))
    if root is None or not root.is_dir():
        return 0
    now = datetime.now(UTC)
    pages = read_pages(root)
    session.add_all(
        DocPage(entity_ref=ref, path=path, title=title, body=body, indexed_at=now)
        for path, title, body in pages
    )
    session.flush()
    return len(pages)


def index_all(context: PluginContext) -> None:
    with context.sessions() as session:
        for entity in all_entities(session):
            if annotation(entity, TECHDOCS_REF):
                index_entity(session, entity)
        session.commit()


class SearchHit(msgspec.Struct):
    entity_ref: str
    path: str
    title: str
    snippet: str
    href: str


def _snippet(body: str, query: str) -> str:
    at = body.lower().find(query.lower())
    start = max(0, at - 60) if at >= 0 else 0
    return " ".join(body[start : start + 200].split())


def search(session: Session, query: str, limit: int = 20) -> list[SearchHit]:
    pattern = f"%{query.lower()}%"
    rows = session.scalars(
        select(DocPage)
        .where(or_(func.lower(DocPage.title).like(pattern), func.lower(DocPage.body).like(pattern)))
        .order_by(DocPage.entity_ref, DocPage.path)
        .limit(limit)
    )
    hits = []
    for row in rows:
        kind, _, rest = row.entity_ref.partition(":")
        hits.append(
            SearchHit(
                entity_ref=row.entity_ref,
                path=row.path,
                title=row.title,
                snippet=_snippet(row.body, query),
                href=f"/plugins/techdocs/entity/{kind}/{rest}?page={row.path}",
            )
        )
    return hits


@get("/api/search", sync_to_thread=True)
def search_docs(db_session: Session, q: Annotated[str, Parameter(query="q")]) -> list[SearchHit]:
    if len(q.strip()) < 2:
        raise ValidationException("search for at least two characters")
    return search(db_session, q.strip())


@get("/", sync_to_thread=True)
def home(db_session: Session, q: Annotated[str, Parameter(query="q")] = "") -> Template:
    hits = search(db_session, q.strip()) if len(q.strip()) >= 2 else []
    return Template(template_name="plugins/techdocs/search.html", context={"q": q, "hits": hits})


@get("/entity/{kind:str}/{namespace:str}/{name:str}", sync_to_thread=True)
def entity_docs(
    db_session: Session,
    kind: str,
    namespace: str,
    name: str,
    page: Annotated[str, Parameter(query="page")] = "",
) -> Template:
    entity = find_entity(db_session, f"{kind}:{namespace}/{name}")
    if entity is None:
        raise NotFoundException(f"no entity {kind}:{namespace}/{name} in the catalog")
    ref = entity_ref_of(entity)
    pages = list(
        db_session.scalars(select(DocPage).where(DocPage.entity_ref == ref).order_by(DocPage.path))
    )
    if not pages:
        # Not indexed yet (the job runs every few minutes): read the source now.
        index_entity(db_session, entity)
        pages = list(
            db_session.scalars(
                select(DocPage).where(DocPage.entity_ref == ref).order_by(DocPage.path)
            )
        )
    if not pages:
        raise NotFoundException(f"{ref} has no TechDocs")
    wanted = page or next((p.path for p in pages if p.path in ("index.md", "README.md")), "")
    current = next((p for p in pages if p.path == wanted), pages[0])
    return Template(
        template_name="plugins/techdocs/page.html",
        context={
            "entity_ref": ref,
            "entity_path": entity_path(entity),
            "pages": pages,
            "current": current,
            "html": _markdown.render(current.body),
        },
    )


def _tabs(_: PluginContext, entity: Entity) -> list[EntityTab]:
    if docs_directory(entity) is None:
        return []
    return [EntityTab("techdocs", "Docs", f"/plugins/techdocs/entity/{entity_path(entity)}")]


def _cards(_: PluginContext, entity: Entity) -> list[EntityCard]:
    return []


def _build(context: PluginContext) -> Any:
    return build_plugin_app(context, [search_docs, home, entity_docs])


plugin = PluginSpec(
    id="techdocs",
    name="TechDocs",
    version="1.0.0",
    tier="free",
    description="Markdown documentation from each entity's source, rendered and searchable.",
    runtime_releases=">=0.1,<1",
    build_app=_build,
    entity_tabs=_tabs,
    entity_cards=_cards,
    jobs=(Job("index", 300.0, index_all),),
)
