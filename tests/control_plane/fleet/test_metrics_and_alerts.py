"""The control plane's Prometheus metrics, and the alert rules checked by promtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from billing.models import StripeEvent
from control_plane.fleet.metrics import InboxSource
from control_plane.tenants.lifecycle import TenantState
from tests.control_plane.factories import make_tenant
from tests.control_plane.fleet.conftest import Client

pytestmark = pytest.mark.fleet

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "infra" / "alerts"
RULES = ALERTS / "backlot-control-plane.rules.yml"


def _samples(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.integration
def test_tenants_are_counted_by_state(client: Client, db_session: Session) -> None:
    made = [make_tenant(db_session)[2] for _ in range(3)]
    made[0].state = TenantState.FAILED
    db_session.commit()
    samples = _samples(client)
    assert (
        samples[("backlot_tenants", (("state", "pending"),))],
        samples[("backlot_tenants", (("state", "failed"),))],
    ) == (2, 1)


@pytest.mark.integration
def test_outbox_lag_and_reconcile_figures_are_exported(client: Client, db_session: Session) -> None:
    make_tenant(db_session)
    db_session.commit()
    samples = _samples(client)
    assert (
        samples[("backlot_outbox_unsent", ())],
        samples[("backlot_reconcile_operations_total", (("state", "pending"),))],
        ("backlot_reconcile_duration_seconds_count", ()) in samples,
        samples[("backlot_outbox_lag_seconds", ())] >= 0,
    ) == (1, 1, True, True)


@pytest.mark.integration
def test_the_stripe_webhook_inbox_lag_is_exported(client: Client, db_session: Session) -> None:
    db_session.add(
        StripeEvent(stripe_event_id="evt_lag", type="invoice.paid", object_id="in_1", payload={})
    )
    db_session.commit()
    samples = _samples(client)
    assert (
        samples[("backlot_webhook_unhandled", ())],
        samples[("backlot_webhook_lag_seconds", ())] >= 0,
    ) == (1, True)


def test_the_webhook_inbox_source_accepts_only_plain_identifiers() -> None:
    with pytest.raises(ValueError, match=r"table\.received_column\.handled_column"):
        InboxSource.parse("stripe_events; DROP TABLE tenants.a.b")


def test_every_alert_names_metrics_the_control_plane_exports() -> None:
    exported = {
        "up",
        "backlot_tenants",
        "backlot_reconcile_operations",
        "backlot_reconcile_duration_seconds_bucket",
        "backlot_outbox_lag_seconds",
        "backlot_webhook_lag_seconds",
        "backlot_rollouts",
    }
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    named = {m for rule in rules for m in re.findall(r"\b(backlot_\w+|up)\{", rule["expr"])}
    assert named <= exported


@pytest.fixture(scope="session")
def promtool() -> Path:
    """promtool built from the Go module proxy by infra/alerts/build-promtool.sh (cached)."""
    try:
        built = subprocess.run(
            [str(ALERTS / "build-promtool.sh")],
            capture_output=True,
            text=True,
            check=True,
            timeout=1500,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.fail(
            f"promtool could not be built (run infra/alerts/build-promtool.sh): {exc}",
            pytrace=False,
        )
    return Path(built.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(1800)
def test_the_alert_rules_pass_promtool_check(promtool: Path) -> None:
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.timeout(1800)
def test_the_alert_rules_pass_their_unit_tests(promtool: Path) -> None:
    tested = subprocess.run(
        [str(promtool), "test", "rules", "backlot-control-plane.tests.yml"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ALERTS,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
