"""The catalog pages in headless Chromium against a live runtime. The browser sends a service
token header, which the runtime accepts like a signed-in member's session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.tenant_runtime.live import SERVICE_TOKEN, LiveRuntime, live_runtime

pytestmark = [pytest.mark.catalog, pytest.mark.browser]

TENANT_ID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "backstage-examples"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRuntime]:
    data = tmp_path_factory.mktemp("pages")
    with live_runtime(
        data,
        f"sqlite:///{data / 'runtime.db'}",
        allow_hosts=[],
        file_roots=[EXAMPLES],
        tenant_id=TENANT_ID,
    ) as running:
        yield running


@pytest.fixture
def page(browser: Browser, runtime: LiveRuntime) -> Iterator[Page]:
    context = browser.new_context(
        base_url=runtime.base_url,
        extra_http_headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def refs_on(page: Page) -> list[str]:
    return list(
        page.locator("#catalog [data-entity-ref]").evaluate_all(
            "rows => rows.map(r => r.dataset.entityRef)"
        )
    )


def test_the_catalog_lists_entities_with_facet_counts(page: Page) -> None:
    page.goto("/catalog")

    kinds = page.locator('[data-facet="kind"] li[data-value="Component"] .count')
    expect(kinds).to_have_text("2")
    expect(page.locator("#catalog-total")).to_have_text("8 entities")


def test_picking_a_kind_narrows_the_list(page: Page) -> None:
    page.goto("/catalog")

    page.click('[data-facet="kind"] li[data-value="Component"] a')

    expect(page.locator("#catalog-total")).to_have_text("2 entities")
    assert refs_on(page) == ["component:default/orders-service", "component:default/storefront-web"]


def test_searching_finds_entities_by_their_words(page: Page) -> None:
    page.goto("/catalog")

    page.fill("#catalog-search", "orders")
    page.press("#catalog-search", "Enter")

    expect(page.locator("#catalog-total")).to_have_text("3 entities")


def test_an_api_page_shows_its_definition_and_relations(page: Page) -> None:
    page.goto("/catalog/api/default/orders-api")

    expect(page.locator("#entity-definition pre")).to_contain_text("openapi: 3.0.3")
    expect(
        page.locator(
            '[data-relation="apiProvidedBy"][data-target="component:default/orders-service"]'
        )
    ).to_be_visible()


def test_the_owner_link_leads_to_the_owning_group(page: Page) -> None:
    page.goto("/catalog/component/default/storefront-web")

    page.click("#entity-owner")

    expect(page.locator("main")).to_have_attribute("data-entity-ref", "group:default/platform-team")


def test_registering_a_location_brings_in_its_entities(page: Page) -> None:
    page.goto("/catalog-import")
    page.select_option("#location-type", "file")
    page.fill("#location-target", str(EXAMPLES / "catalog-info.yaml"))

    page.click("#register-submit")

    expect(page.locator("#entity-title")).to_contain_text("Location")
    page.goto("/catalog/component/default/artist-lookup")
    expect(page.locator('[data-spec="lifecycle"]')).to_have_text("experimental")
    expect(page.locator("#entity-links li")).to_have_count(7)


def test_without_credentials_the_catalog_asks_to_sign_in(
    browser: Browser, runtime: LiveRuntime
) -> None:
    context = browser.new_context(base_url=runtime.base_url)
    anonymous = context.new_page()

    response = anonymous.goto("/catalog")

    assert response is not None
    assert response.status == 401
    expect(anonymous.locator("#sign-in-needed")).to_be_visible()
    context.close()
