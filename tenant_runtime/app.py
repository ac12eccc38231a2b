"""The tenant runtime's Litestar application."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.exceptions.responses import create_exception_response
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.template import TemplateConfig
from sqlalchemy.orm import Session

from tenant_runtime.auth.config import SsoState
from tenant_runtime.auth.keys import KeySets
from tenant_runtime.auth.middleware import session_middleware
from tenant_runtime.auth.oidc import OidcClient
from tenant_runtime.auth.routes import AuthController
from tenant_runtime.auth.saml import SamlServiceProvider
from tenant_runtime.auth.service import SessionPolicy
from tenant_runtime.auth.usage import UsageReporter
from tenant_runtime.catalog.refresh import LocationRefresher
from tenant_runtime.catalog.routes import CatalogController, catalog_error_response
from tenant_runtime.core.database import create_database_engine, create_session_factory
from tenant_runtime.core.requests import request_context_middleware
from tenant_runtime.core.schema import head_revisions
from tenant_runtime.core.settings import RuntimeSettings
from tenant_runtime.health.routes import HealthController
from tenant_runtime.plugins import host as plugin_hosting
from tenant_runtime.plugins.host import PluginHost
from tenant_runtime.plugins.routes import plugin_apis, plugin_pages
from tenant_runtime.portal.catalog_pages import CatalogPagesController
from tenant_runtime.portal.routes import PortalController
from tenant_runtime.scim.routes import ScimController
from tenant_runtime.uplink import Uplink

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
CATALOG_API_PREFIX = "/api/catalog"

logger = structlog.get_logger(__name__)


def handle_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Backstage's error shape under /api/catalog (its client parses it), Litestar's elsewhere."""
    path = request.url.path
    if path == CATALOG_API_PREFIX or path.startswith(CATALOG_API_PREFIX + "/"):
        return catalog_error_response(request, error)
    if not isinstance(error, HTTPException):
        logger.exception("unhandled error", exc_info=error)
    return create_exception_response(request, error)


def provide_db_session(state: State) -> Iterator[Session]:
    """One session per request: the request is the unit of work, so it commits here."""
    with state.session_factory() as session:
        try:
            yield session
        except Exception:
            session.rollback()
            raise
        session.commit()


class RuntimeMetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False


def create_app(settings: RuntimeSettings) -> Litestar:
    """Build the portal for one tenant; nothing touches the database until a request does."""
    engine = create_database_engine(settings.database_url)
    metrics = PrometheusConfig(
        app_name="backlot-runtime",
        prefix="backlot_runtime",
        labels={"tenant_id": settings.tenant_id},
        exclude=["/healthz", "/readyz", "/metrics"],
    )

    uplink = Uplink(settings)
    session_factory = create_session_factory(engine)
    refresher = LocationRefresher(settings, session_factory)
    usage_reporter = UsageReporter(uplink, session_factory, settings.usage_report_seconds)
    plugin_host = PluginHost(settings, session_factory, discovery=lambda: uplink.document)
    plugin_hosting.install(plugin_host)
    uplink.subscribe("plugins", plugin_host.on_section)
    # Authentication: the SSO section and the control plane's identity come through the uplink.
    sso_state = SsoState()
    uplink.subscribe("sso", sso_state.set_sso)
    uplink.subscribe("issuer", sso_state.set_issuer)
    uplink.subscribe("jwks_uri", sso_state.set_jwks_uri)
    key_sets = KeySets(timeout=settings.auth_http_timeout_seconds)

    def dispose_engine() -> None:
        refresher.stop()
        engine.dispose()

    return Litestar(
        route_handlers=[
            HealthController,
            PortalController,
            CatalogController,
            CatalogPagesController,
            RuntimeMetricsController,
            plugin_pages,
            plugin_apis,
            AuthController,
            ScimController,
        ],
        state=State(
            {
                "settings": settings,
                "engine": engine,
                "session_factory": session_factory,
                "location_refresher": refresher,
                "schema_heads": head_revisions(),
                "uplink": uplink,
                "plugin_host": plugin_host,
                "sso_state": sso_state,
                "key_sets": key_sets,
                "oidc_client": OidcClient(
                    key_sets,
                    timeout=settings.auth_http_timeout_seconds,
                    leeway=settings.auth_clock_skew_seconds,
                ),
                "saml_sp": SamlServiceProvider(
                    settings.portal_url, leeway=settings.auth_clock_skew_seconds
                ),
                "session_policy": SessionPolicy(
                    tenant_id=settings.tenant_id,
                    idle=timedelta(seconds=settings.session_idle_timeout_seconds),
                    absolute=timedelta(seconds=settings.session_absolute_timeout_seconds),
                ),
            }
        ),
        dependencies={"db_session": Provide(provide_db_session)},
        middleware=[request_context_middleware, metrics.middleware, session_middleware],
        exception_handlers={Exception: handle_error},
        template_config=TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine),
        on_startup=[uplink.start, refresher.start, plugin_host.start, usage_reporter.start],
        on_shutdown=[usage_reporter.stop, plugin_host.stop, uplink.stop, dispose_engine],
        # Logging is configured once per process by the CLI, with the tenant id on each line.
        logging_config=None,
        openapi_config=None,
    )
