"""The running product and a browser profile per test for the end-to-end tests.

The product is started once for this directory's tests exactly as ``make run`` starts it,
and stopped with Ctrl-C; stopping it asserts a clean exit and no leftover processes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.e2e.product import Product, running_product


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    """The whole product on the embedded default, Ctrl-C'd after this module's tests.

    Module-scoped rather than session-scoped so that its shutdown checks are reported
    against the end-to-end tests, and so that it is gone before a benchmark starts its own.
    """
    with running_product(tmp_path_factory.mktemp("backlot") / "data") as running:
        yield running


@pytest.fixture
def context(browser: Browser, product: Product) -> Iterator[BrowserContext]:
    """A fresh browser profile per test: no cookies from another test's signup."""
    context = browser.new_context(
        base_url=product.base_url, viewport={"width": 1100, "height": 900}
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
