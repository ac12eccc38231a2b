"""How long from "buy" in the control plane to the premium plugin answering in a runtime.

A Team tenant billed at localstripe, a real control plane served on loopback and a real
runtime process polling its uplink every 0.25 s. Each run buys Scorecards (the add-on item
is added and its invoice paid at localstripe), installs it and waits for its API; then
cancels, lets the paid period lapse and uninstalls. Prints the median and the spread of the
Stripe round trip and of buy -> answering.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
from pathlib import Path

import pytest

from billing import addons
from billing.catalog import PLANS
from billing.gateway import StripeGateway
from control_plane.core.database import build_engine, build_session_factory
from control_plane.core.settings import Settings
from control_plane.marketplace import purchases
from control_plane.marketplace import service as marketplace
from control_plane.tenants.models import Tenant
from infra.stripe import servers
from tests.billing.conftest import stripe_secret
from tests.billing.test_premium_plugin_live import SCORECARDS_API, own_database, paid_team_tenant
from tests.control_plane.marketplace.live import run_runtime, serve_control_plane, wait_for

pytestmark = [
    pytest.mark.bench,
    pytest.mark.marketplace,
    pytest.mark.stripe,
    pytest.mark.integration,
]

RUNS = 5
ADDON = "addon_scorecards_monthly"


def test_time_from_buying_to_the_premium_plugin_answering(
    settings: Settings, postgres_admin_url: str, tmp_path: Path
) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with own_database(postgres_admin_url, f"backlot_test_{worker}_premium_bench") as url:
        _measure(settings.model_copy(update={"database_url": url}), tmp_path)


def _measure(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "localstripe").mkdir()
    try:
        stripe_server = servers.start_localstripe(tmp_path / "localstripe")
    except servers.StripeServerUnavailable as exc:
        pytest.fail(f"localstripe is needed (uv sync installs it): {exc}", pytrace=False)
    billed = settings.model_copy(
        update={
            "stripe_api_key": stripe_secret("sk_test_backlot"),
            "stripe_api_base": stripe_server.url,
            "stripe_max_network_retries": 0,
        }
    )
    gateway = StripeGateway(billed)
    for plan in PLANS.values():
        if plan.paid:
            gateway.ensure_product(plan)
            gateway.ensure_price(plan)
    gateway.ensure_addon_price(
        ADDON, name="Scorecards", amount_cents=addons.ADDON_PRICE_CENTS[ADDON]
    )
    engine = build_engine(settings.resolved_database_url)
    sessions = build_session_factory(engine)
    with sessions() as session:
        tenant = paid_team_tenant(session, billed, gateway)
    stripe_calls: list[float] = []
    activations: list[float] = []
    try:
        with (
            serve_control_plane(billed, sessions) as (url, served),
            run_runtime(tmp_path / "runtime", tenant, served, url) as runtime,
        ):
            for _ in range(RUNS):
                started = time.monotonic()
                with sessions() as session:
                    row = session.get(Tenant, tenant.id)
                    assert row is not None
                    plugin = marketplace.get_plugin(session, "scorecards")
                    bought = purchases.buy(session, row, plugin, actor="user:bench")
                    stripe_calls.append(time.monotonic() - started)
                    marketplace.install(session, row, plugin, actor="user:bench")
                    session.commit()
                    assert str(bought.state) == "active"
                wait_for(
                    lambda: runtime.get(SCORECARDS_API).status_code == 200, 30, runtime, "live"
                )
                activations.append(time.monotonic() - started)

                with sessions() as session:
                    row = session.get(Tenant, tenant.id)
                    assert row is not None
                    plugin = marketplace.get_plugin(session, "scorecards")
                    cancelled = purchases.cancel(session, row, plugin, actor="user:bench")
                    cancelled.current_period_end = dt.datetime.now(dt.UTC)
                    marketplace.uninstall(session, row, plugin, actor="user:bench")
                    session.commit()
                wait_for(
                    lambda: runtime.get(SCORECARDS_API).status_code == 404, 30, runtime, "gone"
                )
    finally:
        stripe_server.stop()
        engine.dispose()

    print(
        f"\npremium purchase, Stripe round trip (add item + paid invoice, {RUNS} runs): "
        f"median {statistics.median(stripe_calls):.3f} s, max {max(stripe_calls):.3f} s"
    )
    print(
        f"premium purchase, buy -> answering ({RUNS} runs, uplink polling every 0.25 s): "
        f"median {statistics.median(activations):.3f} s, min {min(activations):.3f} s, "
        f"max {max(activations):.3f} s"
    )
    assert len(activations) == RUNS
