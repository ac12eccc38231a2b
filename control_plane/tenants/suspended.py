"""The page a suspended portal's users see at its address instead of the portal.

The drivers route a suspended portal's address here (the Kubernetes driver through an
ExternalName Service and its Ingress, the local driver through a small stand-in process on the
portal's port). It says who to turn to, in general terms only: the people using a portal are
not the ones who pay for it, so nothing about invoices or cards is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.response import Template
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.core.web import DbSession, plane
from control_plane.identity.models import Organization
from control_plane.tenants.lifecycle import TenantState
from control_plane.tenants.models import Tenant

SUSPENDED_PATH = "/suspended"


@dataclass(frozen=True, slots=True)
class SuspendedPage:
    organization_name: str
    # "operator", "billing", or "resuming" once every hold is lifted but the portal is not back.
    cause: str


def page_for(session: Session, slug: str) -> SuspendedPage | None:
    """What to tell the users of the portal at ``slug``; None when there is no such portal."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None or tenant.state in (TenantState.DELETING, TenantState.DELETED):
        return None
    organization = session.get(Organization, tenant.organization_id)
    assert organization is not None
    holds = set(tenant.suspension_holds)
    # An operator's hold says more than billing's: a payment alone will not lift it.
    if "operator" in holds:
        cause = "operator"
    elif "billing" in holds:
        cause = "billing"
    else:
        cause = "resuming"
    return SuspendedPage(organization_name=organization.name, cause=cause)


def slug_from_host(host: str, base_domain: str) -> str | None:
    """``acme`` from ``acme.portals.example[:443]`` when the base domain is portals.example."""
    name = host.split(":", 1)[0].lower()
    suffix = f".{base_domain.lower()}"
    if not name.endswith(suffix):
        return None
    slug = name[: -len(suffix)]
    return slug if slug and "." not in slug else None


class SuspendedPageController(Controller):
    path = SUSPENDED_PATH
    include_in_schema = False

    def _render(self, state: State, session: Session, slug: str | None) -> Template:
        found = page_for(session, slug) if slug else None
        if found is None:
            raise NotFoundException("There is no portal at this address.")
        return Template(
            template_name="suspended.html",
            context={"page": found, "console_url": plane(state).settings.resolved_public_url},
            # 503 tells crawlers and monitors the outage is temporary; the page tells people why.
            status_code=503,
            headers={"Cache-Control": "no-store", "Retry-After": "3600"},
        )

    @get("/{slug:str}", name="suspended-page", sync_to_thread=True)
    def by_slug(self, state: State, db_session: DbSession, slug: str) -> Template:
        return self._render(state, db_session, slug)

    @get("/", name="suspended-page-by-host", sync_to_thread=True)
    def by_host(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Template:
        """For ingress controllers that keep the portal's Host header instead of a path."""
        host = request.headers.get("x-forwarded-host") or request.headers.get("host") or ""
        return self._render(
            state, db_session, slug_from_host(host, plane(state).settings.base_domain)
        )
