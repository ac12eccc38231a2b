"""The control plane's Litestar application factory."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import structlog
from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin, SQLAlchemySyncConfig
from litestar import Litestar, MediaType, Request, Response
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from sqlalchemy.orm import Session, sessionmaker

from billing import addons as billing_addons
from billing import link as billing_link
from billing.routes import BillingApiController, BillingConsoleController, StripeWebhookController
from control_plane.core import migrations
from control_plane.core.database import build_engine, build_session_factory, unit_of_work
from control_plane.core.errors import DomainError
from control_plane.core.logging import configure_logging
from control_plane.core.settings import Settings, load_settings
from control_plane.core.web import PlaneState, bind_request_context, relay_pending, stamp_request_id
from control_plane.fleet import metrics as fleet_metrics
from control_plane.fleet import views as fleet_views
from control_plane.fleet.login import OperatorLoginController
from control_plane.fleet.routes import AdminController
from control_plane.health import HealthController
from control_plane.identity.routes import (
    AccountController,
    JwksController,
    LoginController,
    PortalController,
)
from control_plane.identity.sso import link as sso_link
from control_plane.identity.sso.routes import SsoApiController, SsoConsoleController
from control_plane.marketplace import entitlements as marketplace_entitlements
from control_plane.marketplace import service as marketplace
from control_plane.marketplace.routes import (
    OperatorPluginController,
    PluginConsoleController,
    TenantPluginApiController,
)
from control_plane.marketplace.seed import seed as seed_marketplace
from control_plane.models import import_all
from control_plane.runtime_link import service as runtime_link
from control_plane.runtime_link.routes import RuntimeLinkController
from control_plane.signup.routes import SignupController
from control_plane.tenants.routes import ConsoleController, TenantApiController
from control_plane.tenants.suspended import SuspendedPageController
from control_plane.worker import build_celery

HERE = Path(__file__).resolve().parent
log = structlog.get_logger(__name__)


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


def _not_authorized(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    if _wants_html(request):
        return Redirect(path="/login", query_params={"next": request.url.path})
    return Response(
        {"status_code": 401, "detail": exc.detail}, status_code=401, media_type=MediaType.JSON
    )


def _domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    return Response(
        {"status_code": exc.status_code, "detail": exc.message}, status_code=exc.status_code
    )


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if _wants_html(request):
        return Response(
            f"<!doctype html><title>{exc.status_code}</title><h1>{exc.status_code}</h1>"
            f"<p>{html.escape(str(exc.detail))}</p>",
            status_code=exc.status_code,
            media_type=MediaType.HTML,
        )
    return Response(
        {"status_code": exc.status_code, "detail": exc.detail}, status_code=exc.status_code
    )


def create_app(
    settings: Settings | None = None, *, sessions: sessionmaker[Session] | None = None
) -> Litestar:
    """Build the app; ``sessions`` lets the tests bind every request to one connection."""
    settings = settings or load_settings()
    configure_logging(settings.log_format, settings.log_level)
    import_all()
    engine = build_engine(settings.resolved_database_url)
    state = PlaneState(
        settings=settings,
        sessions=sessions or build_session_factory(engine),
        celery=build_celery(settings),
    )
    sso_link.install(settings)
    billing_link.install()
    # Premium plugins are bought through billing's Stripe subscription, when it is configured.
    billing_addons.install(settings)
    runtime_link.CONFIG_SECTIONS["plugins"] = marketplace_entitlements.plugins_section(settings)
    fleet_views.DETAIL_SECTIONS["plugins"] = marketplace.fleet_section

    def seed_plugins() -> None:
        with unit_of_work(state.sessions) as session:
            # Before `backlot migrate` there is no registry to seed; readiness says so.
            if not migrations.at_head(session.connection()):
                log.warning("marketplace.seed_skipped", reason="database schema is not at head")
                return
            seed_marketplace(session)

    fleet_metrics.collector.configure(state.sessions, settings.metrics_webhook_inbox)
    database = SQLAlchemySyncConfig(
        engine_instance=engine,
        session_dependency_key="db_session",
        before_send_handler="autocommit_include_redirects",
        session_maker=state.sessions,
    )

    return Litestar(
        route_handlers=[
            HealthController,
            SignupController,
            LoginController,
            ConsoleController,
            TenantApiController,
            RuntimeLinkController,
            JwksController,
            AccountController,
            PortalController,
            SsoConsoleController,
            SsoApiController,
            StripeWebhookController,
            BillingConsoleController,
            BillingApiController,
            TenantPluginApiController,
            PluginConsoleController,
            OperatorPluginController,
            AdminController,
            OperatorLoginController,
            PrometheusController,
            SuspendedPageController,
            create_static_files_router(path="/static", directories=[HERE / "static"]),
        ],
        plugins=[SQLAlchemyPlugin(config=database)],
        middleware=[
            CookieBackendConfig(
                secret=settings.session_secret,
                key="backlot_session",
                max_age=settings.session_max_age_seconds,
                secure=settings.cookies_secure,
                httponly=True,
                samesite="lax",
            ).middleware,
            PrometheusConfig(app_name="backlot_control_plane", group_path=True).middleware,
        ],
        csrf_config=CSRFConfig(
            secret=settings.session_secret.hex(),
            cookie_name="backlot_csrf",
            cookie_secure=settings.cookies_secure,
            cookie_samesite="strict",
            # Stripe signs its webhooks; a browser never posts there.
            exclude=["/webhooks/stripe"],
        ),
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(
            title="Backlot control plane",
            version="0.1.0",
            path="/schema",
            components=Components(
                security_schemes={
                    "operatorToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="An operator API token (`backlot fleet token create`).",
                    )
                }
            ),
        ),
        before_request=bind_request_context,
        after_request=stamp_request_id,
        after_response=relay_pending,
        exception_handlers={
            NotAuthorizedException: _not_authorized,
            DomainError: _domain_error,
            HTTPException: _http_error,
        },
        state=State({"plane": state}),
        on_startup=[seed_plugins],
    )
