"""Signing up for a portal in a real browser, against the whole running product."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Request, Response, expect

from tests.e2e.product import Product

pytestmark = [pytest.mark.e2e, pytest.mark.embedded, pytest.mark.browser]

PROVISIONING_TIMEOUT_SECONDS = 90.0
STEP_KEYS = ["created", "queued", "database", "workload", "ready"]
PASSWORD = "orchid-lantern-velvet-9"

# What the example catalog (tenant_runtime/catalog/seed/example-catalog.yaml) holds,
# written out by hand so the test can fail.
SEED_REFS = {
    "group:default/platform-team",
    "user:default/ada.lovelace",
    "user:default/grace.hopper",
    "system:default/storefront",
    "component:default/storefront-web",
    "component:default/orders-service",
    "api:default/orders-api",
    "resource:default/orders-db",
}


@dataclass(frozen=True)
class Signup:
    organization_name: str
    slug: str
    email: str
    password: str = PASSWORD


def _fill(page: Page, signup: Signup) -> None:
    page.goto("/signup")
    page.fill("#organization_name", signup.organization_name)
    page.fill("#slug", signup.slug)
    page.fill("#email", signup.email)
    page.fill("#password", signup.password)


def _is_signup_post(product: Product) -> Callable[[Response], bool]:
    return lambda r: r.request.method == "POST" and r.url == f"{product.base_url}/signup"


def _step_statuses(page: Page) -> list[tuple[str, str]]:
    rows = page.locator("#steps li[data-step]").evaluate_all(
        "items => items.map(item => [item.dataset.step, item.dataset.status])"
    )
    return [(step, status) for step, status in rows]


def _watch_steps_until_done(page: Page) -> list[list[tuple[str, str]]]:
    """Every distinct state of the steps list the page showed, until all were done."""
    seen: list[list[tuple[str, str]]] = []
    deadline = time.monotonic() + PROVISIONING_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        current = _step_statuses(page)
        if not seen or seen[-1] != current:
            seen.append(current)
        if current and all(status == "done" for _, status in current):
            break
        time.sleep(0.1)
    return seen


def test_signup_shows_live_progress_and_leads_to_the_portal(
    page: Page, product: Product, tmp_path: Path
) -> None:
    page.goto("/signup")
    page.fill("#organization_name", "Initech Labs")
    # The page asks /signup/slug and fills in the suggested address by itself.
    expect(page.locator("#slug")).to_have_value("initech-labs")
    expect(page.locator("#slug-status")).to_have_text("Available.")
    page.fill("#email", "peter.gibbons@example.com")
    page.fill("#password", PASSWORD)

    page.click("#signup-submit")
    page.wait_for_url(f"{product.base_url}/console/progress")
    expect(page.locator("h1")).to_have_text("Setting up Initech Labs")

    seen = _watch_steps_until_done(page)
    page.screenshot(path=tmp_path / "progress.png", full_page=True)

    assert [step for step, _ in seen[-1]] == STEP_KEYS
    assert seen[-1] == [(step, "done") for step in STEP_KEYS], (
        f"provisioning did not finish within {PROVISIONING_TIMEOUT_SECONDS:.0f}s; the page "
        f"showed {seen}; product log:\n{product.log_tail()}"
    )
    intermediate = [state for state in seen if any(status != "done" for _, status in state)]
    assert intermediate, f"the page never showed provisioning in progress, only {seen}"

    link = page.locator("#portal-link")
    expect(link).to_be_visible()
    portal_url = link.get_attribute("href")
    assert portal_url is not None
    assert portal_url.startswith("http://127.0.0.1:")
    link.click()
    page.wait_for_url(portal_url)

    expect(page.locator("h1")).to_have_text("Initech Labs")
    expect(page.locator("#catalog")).to_be_visible()
    expect(page.locator('[data-entity-ref="component:default/storefront-web"]')).to_be_visible()
    refs = set(
        page.locator("[data-entity-ref]").evaluate_all("rows => rows.map(r => r.dataset.entityRef)")
    )
    assert refs >= SEED_REFS, f"missing seeded entities: {sorted(SEED_REFS - refs)}"
    page.screenshot(path=tmp_path / "portal.png", full_page=True)
    print(f"\nscreenshots: {tmp_path / 'progress.png'} {tmp_path / 'portal.png'}")


@dataclass(frozen=True)
class BadInput:
    signup: Signup
    field: str
    message: str
    slug_never_created: str


BAD_INPUTS = {
    "reserved address": BadInput(
        Signup("Admin Things", "admin", "reserved@example.com"),
        "slug",
        "“admin” is reserved; please choose another address.",
        "admin",
    ),
    "invalid address": BadInput(
        Signup("Bad Dashes", "-bad-", "dashes@example.com"),
        "slug",
        "The address may hold only lower-case letters, digits and hyphens, "
        "and must start and end with a letter or digit.",
        "-bad-",
    ),
    "malformed email": BadInput(
        Signup("Mail Mishap", "mail-mishap", "not-an-email"),
        "email",
        "That email address is not valid: An email address must have an @-sign.",
        "mail-mishap",
    ),
    "weak password": BadInput(
        Signup("Short Secret", "short-secret", "short.secret@example.com", password="short"),
        "password",
        "Use at least 12 characters for the password.",
        "short-secret",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_signup_shows_the_problem_and_creates_nothing(
    page: Page, product: Product, case: BadInput
) -> None:
    _fill(page, case.signup)

    with page.expect_response(_is_signup_post(product)) as submitted:
        page.click("#signup-submit")

    assert submitted.value.status == 422
    error = page.locator(f"#{case.field}-error")
    expect(error).to_have_text(case.message)
    expect(error).to_be_visible()
    # The message sits right after its own field's input (and the field's hint).
    expect(page.locator("p.error")).to_have_count(1)
    expect(page.locator(f"label[for={case.field}] ~ #{case.field}-error")).to_have_count(1)
    assert page.url == f"{product.base_url}/signup"
    expect(page.locator("#organization_name")).to_have_value(case.signup.organization_name)
    assert product.organization_count(case.slug_never_created) == 0
    assert product.user_count(case.signup.email.lower()) == 0


def test_double_submit_in_the_page_sends_one_signup(page: Page, product: Product) -> None:
    signup = Signup("Double Click Co", "double-click-co", "double.click@example.com")
    _fill(page, signup)
    posts: list[Request] = []
    page.on(
        "request",
        lambda r: posts.append(r) if r.method == "POST" and r.url.endswith("/signup") else None,
    )

    # Enter pressed twice, or a script submitting twice: the page's guard stops the second.
    page.evaluate(
        "() => { const form = document.getElementById('signup-form');"
        " form.requestSubmit(); form.requestSubmit(); }"
    )
    page.wait_for_url(f"{product.base_url}/console/progress")

    assert len(posts) == 1
    expect(page.locator("#signup-submit")).to_have_count(0)
    assert product.organization_count(signup.slug) == 1


def test_the_same_form_posted_twice_creates_one_organization(page: Page, product: Product) -> None:
    signup = Signup("Twice Posted", "twice-posted", "twice.posted@example.com")
    _fill(page, signup)
    # Exactly what the browser would send, hidden signup_token and CSRF token included.
    form = page.evaluate(
        "() => Object.fromEntries(new FormData(document.getElementById('signup-form')))"
    )
    assert set(form) >= {"_csrf_token", "signup_token", "organization_name", "slug", "email"}

    first = page.request.post(f"{product.base_url}/signup", form=form, max_redirects=0)
    second = page.request.post(f"{product.base_url}/signup", form=form, max_redirects=0)

    assert (first.status, first.headers.get("location")) == (303, "/console/progress")
    assert (second.status, second.headers.get("location")) == (303, "/console/progress")
    assert product.organization_count(signup.slug) == 1
    assert product.user_count(signup.email) == 1
    page.goto("/console/progress")
    expect(page.locator("h1")).to_have_text("Setting up Twice Posted")


def test_log_out_and_back_in(page: Page, product: Product) -> None:
    signup = Signup("Login Loop", "login-loop", "login.loop@example.com")
    _fill(page, signup)
    page.click("#signup-submit")
    page.wait_for_url(f"{product.base_url}/console/progress")
    expect(page.locator("#portal-link")).to_be_visible(timeout=PROVISIONING_TIMEOUT_SECONDS * 1000)

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{product.base_url}/login")

    page.goto("/console/")
    assert page.url == f"{product.base_url}/login?next=%2Fconsole"
    expect(page.locator("h1")).to_have_text("Log in")

    page.fill("#email", signup.email)
    page.fill("#password", "not-the-right-password")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url == f"{product.base_url}/login"
    ) as wrong:
        page.get_by_role("button", name="Log in").click()
    assert wrong.value.status == 401
    expect(page.locator("#form-error")).to_contain_text("do not match")

    page.fill("#password", signup.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text(signup.organization_name)
    assert page.url == f"{product.base_url}/console"
    expect(page.locator("#tenant-state")).to_have_text("active")


def test_the_same_form_posted_twice_at_once_creates_one_organization(
    page: Page, product: Product
) -> None:
    """Two submits of one form in flight together: both are the same signup, not a clash."""
    signup = Signup("Racing Twins", "racing-twins", "racing.twins@example.com")
    _fill(page, signup)
    form = page.evaluate(
        "() => Object.fromEntries(new FormData(document.getElementById('signup-form')))"
    )
    # The browser's own cookies (the CSRF cookie); Playwright's sync API is single-threaded.
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    start = threading.Barrier(2)

    def submit() -> httpx.Response:
        start.wait()
        return httpx.post(
            f"{product.base_url}/signup",
            data=form,
            cookies=cookies,
            headers={"Accept": "text/html"},
            timeout=30.0,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(lambda _: submit(), range(2)))

    outcomes = [(r.status_code, r.headers.get("location")) for r in responses]
    assert outcomes == [(303, "/console/progress")] * 2, [
        (r.status_code, r.headers.get("location"), re.findall(r'role="alert">([^<]*)<', r.text))
        for r in responses
    ]
    assert product.organization_count(signup.slug) == 1


def test_a_resubmit_whose_first_answer_was_lost_still_lands_on_progress(
    page: Page, product: Product
) -> None:
    """A double click where the browser aborted the first request and never saw its cookie."""
    signup = Signup("Lost Answer", "lost-answer", "lost.answer@example.com")
    _fill(page, signup)
    form = page.evaluate(
        "() => Object.fromEntries(new FormData(document.getElementById('signup-form')))"
    )
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    first = httpx.post(
        f"{product.base_url}/signup",
        data=form,
        cookies=cookies,
        headers={"Accept": "text/html"},
        timeout=30.0,
    )
    assert (first.status_code, first.headers.get("location")) == (303, "/console/progress")

    page.click("#signup-submit")

    expect(page.locator("h1")).to_have_text("Setting up Lost Answer")
    assert page.url == f"{product.base_url}/console/progress"
    assert product.organization_count(signup.slug) == 1
