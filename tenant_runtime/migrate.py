"""`migrate`: bring a tenant database to the schema head and seed an empty catalog.

The control plane runs this before `serve`, as a migration Job runs before a Deployment.
"""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session

from tenant_runtime.catalog.service import CatalogService
from tenant_runtime.core.database import (
    create_database_engine,
    ensure_sqlite_directory,
    redacted_url,
)
from tenant_runtime.core.schema import upgrade_to_head
from tenant_runtime.core.settings import RuntimeSettings

logger = structlog.get_logger(__name__)


def migrate(settings: RuntimeSettings) -> int:
    """Upgrade to head, then seed the example catalog if empty; returns entities seeded."""
    ensure_sqlite_directory(settings.database_url)
    engine = create_database_engine(settings.database_url)
    try:
        logger.info("migrating database", database=redacted_url(settings.database_url))
        upgrade_to_head(engine)
        with Session(engine) as session, session.begin():
            seeded = CatalogService(session).seed_example_catalog()
    finally:
        engine.dispose()
    logger.info("database ready", seeded_entities=seeded)
    return seeded
