"""The whole chain with a real Celery worker: a signed Stripe event is posted to the endpoint,
relayed through the outbox, handled by the worker against localstripe, and the paid portal is
provisioned by the same worker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar.testing import TestClient
from sqlalchemy import Engine, text

from billing import service
from billing.gateway import StripeGateway
from control_plane.app import create_app
from control_plane.core.database import build_session_factory
from control_plane.core.settings import Settings
from control_plane.identity.models import Organization
from control_plane.signup import service as signup
from tests.billing.conftest import (
    OLD_WEBHOOK_SECRET,
    WEBHOOK_SECRET,
    checkout_completed,
    pay_at_checkout,
    post_event,
)
from tests.control_plane.factories import signup_form
from tests.integration.conftest import (  # noqa: F401 - fixtures shared with the worker tests
    ROOT,
    SECRET_KEY,
    Backlot,
    worker_database_url,
    worker_engine,
)

pytestmark = [pytest.mark.stripe, pytest.mark.integration, pytest.mark.worker]

# A Redis database of its own: the other worker tests flush database 2 and their workers,
# which may run other code, would take this test's messages from a shared queue.
BILLING_BROKER_DB = 9

TABLES = (
    "billing_stripe_events",
    "billing_seat_changes",
    "billing_usage_reports",
    "billing_accounts",
    "outbox_messages",
    "operations",
    "tenant_events",
    "tenants",
    "memberships",
    "users",
    "organizations",
)


@pytest.fixture
def backlot(
    tmp_path: Path,
    worker_engine: Engine,  # noqa: F811
    worker_database_url: str,  # noqa: F811
    redis_url: str,
    localstripe_url: str,
    catalog_in_localstripe: None,
) -> Iterator[Backlot]:
    with worker_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    broker_url = f"{redis_url}/{BILLING_BROKER_DB}"
    redis.Redis.from_url(broker_url).flushdb()
    values: dict[str, Any] = {
        "env": "test",
        "database_url": worker_database_url,
        "broker_url": broker_url,
        "data_dir": str(tmp_path / "backlot"),
        "secret_key": SECRET_KEY,
        "reconcile_lease_seconds": 4,
        "resync_interval_seconds": 2,
        "outbox_relay_interval_seconds": 1,
        "runtime_start_timeout_seconds": 30,
        "stripe_api_key": "sk_test_backlot",
        "stripe_api_base": localstripe_url,
        "stripe_webhook_secrets": f"{WEBHOOK_SECRET},{OLD_WEBHOOK_SECRET}",
        "billing_interval_seconds": 1,
    }
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith("BACKLOT_")}
    worker_env.update({f"BACKLOT_{k.upper()}": str(v) for k, v in values.items()})
    worker_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    settings = Settings(**values)
    client: TestClient[Any] = TestClient(create_app(settings))
    client.__enter__()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    made = Backlot(settings, worker_env, worker_engine, client, log_dir)
    yield made
    made.close()


def test_a_paid_signup_becomes_a_live_portal_once_stripe_says_it_is_paid(
    backlot: Backlot,
) -> None:
    settings = backlot.settings
    gateway = StripeGateway(settings)
    sessions = build_session_factory(backlot.engine)
    with sessions() as session:
        user, tenant = signup.register(
            session,
            signup_form(plan="team", slug=f"paid-{uuid.uuid4().hex[:8]}"),
            runtime_release=settings.runtime_release,
            billing_enabled=True,
        )
        organization = session.get(Organization, tenant.organization_id)
        account = service.account_of_tenant(session, tenant.id)
        assert organization is not None
        assert account is not None
        account.customer_id = gateway.create_customer(
            organization_id=str(organization.id), name=organization.name, email=user.email
        )
        session.commit()
        organization_id, customer_id, tenant_id = (
            str(organization.id),
            account.customer_id,
            tenant.id,
        )
    backlot.start_worker()
    subscription = pay_at_checkout(
        gateway,
        customer_id=customer_id,
        organization_id=organization_id,
        plan_key="team",
        quantity=5,
    )
    body = checkout_completed(
        organization_id=organization_id, customer_id=customer_id, subscription_id=subscription["id"]
    )
    assert post_event(backlot.client, body).status_code == 200

    def live() -> str | None:
        rows = backlot.rows("SELECT state FROM tenants WHERE id = :id", id=tenant_id)
        return "active" if rows and rows[0][0] == "active" else None

    assert backlot.wait_for(live, "the paid portal to become active", timeout=90) == "active"
