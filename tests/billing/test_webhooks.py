"""The Stripe webhook endpoint: signatures checked on the raw body, events stored once, fast.

Events are signed by the stripe library's own signing code and posted to the real app.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import structlog
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from billing import inbox
from billing.gateway import StripeGateway
from billing.models import StripeEvent
from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.outbox.models import OutboxMessage
from tests.billing.conftest import (
    OLD_WEBHOOK_SECRET,
    WEBHOOK_SECRET,
    event,
    post_event,
    sign,
    stripe_secret,
)

pytestmark = [pytest.mark.stripe, pytest.mark.integration]


def _subscription_event(customer: str = "cus_nobody") -> dict[str, Any]:
    return event(
        "customer.subscription.updated",
        {"id": "sub_123", "object": "subscription", "customer": customer, "status": "active"},
    )


def _count(db_session: Session, model: Any) -> int:
    return int(db_session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_signed_event_is_accepted(client: TestClient[Any]) -> None:
    assert post_event(client, _subscription_event()).status_code == 200


def test_a_signed_event_lands_in_the_inbox_with_a_message_to_handle_it(
    client: TestClient[Any], db_session: Session
) -> None:
    body = _subscription_event()
    post_event(client, body)
    stored = db_session.scalars(select(StripeEvent)).one()
    message = db_session.scalars(
        select(OutboxMessage).where(OutboxMessage.task_name == inbox.HANDLE_TASK)
    ).one()
    assert (stored.stripe_event_id, stored.customer_id, message.payload) == (
        body["id"],
        "cus_nobody",
        {"event_id": body["id"]},
    )


def test_the_same_event_twice_is_stored_once(client: TestClient[Any], db_session: Session) -> None:
    body = _subscription_event()
    post_event(client, body)
    second = post_event(client, body)
    assert (second.json()["duplicate"], _count(db_session, StripeEvent)) == (True, 1)


def test_a_duplicate_queues_no_second_handling(
    client: TestClient[Any], db_session: Session
) -> None:
    body = _subscription_event()
    post_event(client, body)
    post_event(client, body)
    assert _count(db_session, OutboxMessage) == 1


def test_the_previous_secret_still_verifies_during_a_rotation(client: TestClient[Any]) -> None:
    assert post_event(client, _subscription_event(), secret=OLD_WEBHOOK_SECRET).status_code == 200


def test_a_forged_signature_is_rejected(client: TestClient[Any], db_session: Session) -> None:
    response = post_event(client, _subscription_event(), secret="whsec_guessed")
    assert (response.status_code, _count(db_session, StripeEvent)) == (400, 0)


def test_a_body_changed_after_signing_is_rejected(client: TestClient[Any]) -> None:
    payload = json.dumps(_subscription_event())
    header = sign(payload)
    tampered = payload.replace('"active"', '"canceled"')
    response = client.post(
        "/webhooks/stripe", content=tampered.encode(), headers={"Stripe-Signature": header}
    )
    assert response.status_code == 400


def test_a_stale_event_is_rejected(client: TestClient[Any]) -> None:
    response = post_event(client, _subscription_event(), timestamp=int(time.time()) - 3600)
    assert response.status_code == 400


def test_a_replayed_old_delivery_is_rejected(client: TestClient[Any]) -> None:
    payload = json.dumps(_subscription_event())
    header = sign(payload, timestamp=int(time.time()) - 301)
    response = client.post(
        "/webhooks/stripe", content=payload.encode(), headers={"Stripe-Signature": header}
    )
    assert response.status_code == 400


def test_a_request_without_a_signature_is_rejected(client: TestClient[Any]) -> None:
    response = client.post("/webhooks/stripe", content=json.dumps(_subscription_event()).encode())
    assert response.status_code == 400


def test_an_endpoint_without_secrets_refuses_everything(
    stripe_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    settings = stripe_settings.model_copy(update={"stripe_webhook_secrets": stripe_secret("")})
    with TestClient(app=create_app(settings, sessions=sessions)) as unconfigured:
        assert post_event(unconfigured, _subscription_event()).status_code == 400


def test_a_rejection_is_logged_without_the_secret_or_the_signature(client: TestClient[Any]) -> None:
    body = _subscription_event()
    payload = json.dumps(body)
    header = sign(payload, secret="whsec_guessed")
    with structlog.testing.capture_logs() as logs:
        client.post(
            "/webhooks/stripe", content=payload.encode(), headers={"Stripe-Signature": header}
        )
    logged = json.dumps(logs, default=str)
    assert ("billing.webhook_rejected" in logged, WEBHOOK_SECRET in logged, header in logged) == (
        True,
        False,
        False,
    )


def test_an_event_for_an_unknown_customer_is_parked(
    client: TestClient[Any], db_session: Session, stripe_settings: Settings
) -> None:
    body = _subscription_event("cus_not_ours")
    post_event(client, body)
    outcome = inbox.handle(db_session, stripe_settings, StripeGateway(stripe_settings), body["id"])
    row = db_session.scalars(select(StripeEvent)).one()
    assert (outcome, row.state, row.attempts, row.next_attempt_at is not None) == (
        "parked",
        "parked",
        1,
        True,
    )


def test_a_parked_event_is_queued_again_when_its_time_comes(
    client: TestClient[Any], db_session: Session, stripe_settings: Settings
) -> None:
    body = _subscription_event("cus_not_ours")
    post_event(client, body)
    inbox.handle(db_session, stripe_settings, StripeGateway(stripe_settings), body["id"])
    row = db_session.scalars(select(StripeEvent)).one()
    assert row.next_attempt_at is not None
    assert inbox.due_for_retry(db_session, row.next_attempt_at) == [body["id"]]


def test_a_parked_event_is_given_up_after_the_last_attempt(
    client: TestClient[Any], db_session: Session, stripe_settings: Settings
) -> None:
    settings = stripe_settings.model_copy(update={"billing_event_max_attempts": 2})
    body = _subscription_event("cus_not_ours")
    post_event(client, body)
    gateway = StripeGateway(settings)
    outcomes = [inbox.handle(db_session, settings, gateway, body["id"]) for _ in range(3)]
    assert outcomes == ["parked", "ignored", "duplicate"]


def test_an_event_stuck_unhandled_is_queued_again(
    client: TestClient[Any], db_session: Session
) -> None:
    body = _subscription_event()
    post_event(client, body)
    row = db_session.scalars(select(StripeEvent)).one()
    assert inbox.due_for_retry(db_session, row.created_at + inbox.STUCK_AFTER) == [body["id"]]


def test_a_fresh_unhandled_event_is_left_to_its_message(
    client: TestClient[Any], db_session: Session
) -> None:
    post_event(client, _subscription_event())
    row = db_session.scalars(select(StripeEvent)).one()
    assert inbox.due_for_retry(db_session, row.created_at) == []
