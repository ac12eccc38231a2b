"""A paid signup in a real browser: Checkout first, provisioning once Stripe says it is paid.

The whole product runs as ``make run`` does, its Stripe calls answered by Stripe's official
stripe-mock. The browser goes as far as the redirect to the Checkout URL that stripe-mock
returned (Stripe's hosted page itself is not ours to stand in for: the navigation is stopped
there), then the signed ``checkout.session.completed`` Stripe would send is posted to the
product's webhook endpoint, and the progress page shows the portal being provisioned.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import stripe
from playwright.sync_api import Page, Route, expect

from infra.stripe import servers
from tests.e2e.product import Product, running_product

pytestmark = [pytest.mark.e2e, pytest.mark.embedded, pytest.mark.browser, pytest.mark.stripe]

WEBHOOK_SECRET = "whsec_e2e_paid_signup"
PASSWORD = "orchid-lantern-velvet-9"
PROVISIONING_TIMEOUT_SECONDS = 90.0
STEP_KEYS = ["created", "payment", "queued", "database", "workload", "ready"]


@pytest.fixture(scope="module")
def stripe_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        server = servers.start_stripe_mock(tmp_path_factory.mktemp("stripe-mock"))
    except servers.StripeServerUnavailable as exc:
        pytest.fail(
            f"stripe-mock is needed: {exc} (build it with `bash infra/stripe/build.sh`)",
            pytrace=False,
        )
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory, stripe_mock: str) -> Iterator[Product]:
    """The product with billing on, pointed at stripe-mock by settings alone."""
    with running_product(
        tmp_path_factory.mktemp("backlot-paid") / "data",
        BACKLOT_STRIPE_API_KEY="sk_test_backlot",
        BACKLOT_STRIPE_API_BASE=stripe_mock,
        BACKLOT_STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET,
        BACKLOT_STRIPE_MAX_NETWORK_RETRIES="0",
    ) as running:
        yield running


def _query(product: Product, sql: str, *args: str) -> tuple[object, ...]:
    with contextlib.closing(sqlite3.connect(product.database_path, timeout=10)) as connection:
        row = connection.execute(sql, args).fetchone()
    assert row is not None, f"no row for {sql} {args}"
    return tuple(row)


def _organization_id(product: Product, slug: str) -> str:
    (value,) = _query(product, "SELECT id FROM organizations WHERE slug = ?", slug)
    # advanced-alchemy keeps a GUID as 16 raw bytes on SQLite.
    return str(uuid.UUID(bytes=value)) if isinstance(value, bytes) else str(uuid.UUID(str(value)))


def _checkout_url(product: Product) -> str:
    (url,) = _query(product, "SELECT checkout_url FROM billing_accounts")
    return str(url)


def _checkout_completed(product: Product, organization_id: str) -> httpx.Response:
    """The event Stripe sends once Checkout is paid, signed as Stripe signs it."""
    customer, session = _query(
        product, "SELECT customer_id, checkout_session_id FROM billing_accounts"
    )
    payload = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "livemode": False,
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": session,
                    "object": "checkout.session",
                    "mode": "subscription",
                    "client_reference_id": organization_id,
                    "customer": customer,
                    "subscription": f"sub_e2e_{uuid.uuid4().hex[:12]}",
                    "payment_status": "paid",
                    "status": "complete",
                }
            },
        }
    )
    return httpx.post(
        f"{product.base_url}/webhooks/stripe",
        content=payload.encode(),
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(
                payload, WEBHOOK_SECRET
            ),
        },
    )


def _steps(page: Page) -> list[tuple[str, str]]:
    rows = page.locator("#steps li[data-step]").evaluate_all(
        "items => items.map(item => [item.dataset.step, item.dataset.status])"
    )
    return [(step, status) for step, status in rows]


def test_a_paid_signup_goes_to_checkout_and_provisions_once_paid(
    page: Page, product: Product, tmp_path: Path
) -> None:
    stopped_at: list[str] = []

    def stop_at_stripe(route: Route) -> None:
        stopped_at.append(route.request.url)
        route.abort()

    page.route("https://checkout.stripe.com/**", stop_at_stripe)
    slug = f"paid-{uuid.uuid4().hex[:8]}"
    page.goto("/signup")
    page.fill("#organization_name", "Paying Customer")
    page.fill("#slug", slug)
    page.fill("#email", f"owner@{slug}.example.com")
    page.fill("#password", PASSWORD)
    page.check('input[name="plan"][value="team"]')
    with contextlib.suppress(Exception):  # the aborted navigation to Stripe is the point
        page.click("#signup-submit")
    deadline = time.monotonic() + 15
    while not stopped_at and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert stopped_at == [_checkout_url(product)], (
        f"the browser should be sent to the Checkout URL Stripe returned; log:\n"
        f"{product.log_tail()}"
    )

    page.goto("/console/progress")
    expect(page.locator("#payment-wait")).to_be_visible()
    page.screenshot(path=tmp_path / "waiting-for-payment.png", full_page=True)

    assert _checkout_completed(product, _organization_id(product, slug)).status_code == 200

    seen: list[list[tuple[str, str]]] = []
    deadline = time.monotonic() + PROVISIONING_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        current = _steps(page)
        if not seen or seen[-1] != current:
            seen.append(current)
        if current and all(status == "done" for _, status in current):
            break
        page.wait_for_timeout(200)
    page.screenshot(path=tmp_path / "provisioned.png", full_page=True)
    print(f"\nscreenshots: {tmp_path / 'waiting-for-payment.png'} {tmp_path / 'provisioned.png'}")
    assert seen[-1] == [(step, "done") for step in STEP_KEYS], (
        f"the portal was not provisioned within {PROVISIONING_TIMEOUT_SECONDS:.0f}s after the "
        f"payment; the page showed {seen}; log:\n{product.log_tail()}"
    )

    # The notice lives in the polled part of the page, so it goes away without a reload.
    expect(page.locator("#payment-wait")).to_have_count(0)
