"""The SCIM server checked by the third-party compliance checker scim2-tester."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from scim2_client import BaseSyncSCIMClient
from scim2_tester import Status, check_server

from tests.tenant_runtime.auth.conftest import sso_section
from tests.tenant_runtime.scim.conftest import SCIM_TOKEN, SCIM_TOKEN_SHA256

pytestmark = pytest.mark.sso


class HttpxSCIMClient(BaseSyncSCIMClient):  # type: ignore[misc]
    """scim2-client's engine for httpx (it ships one for httpx2 only), over the test client."""

    def __init__(self, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        url = self.client.build_request("GET", endpoint).url
        base = self.client.base_url
        return bool(url.host == base.host and url.path.startswith(base.path))

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, url, **kwargs)


@pytest.fixture
def scim_client(app: Litestar) -> Iterator[HttpxSCIMClient]:
    app.state.sso_state.set_sso(sso_section(scim_token_sha256=SCIM_TOKEN_SHA256))
    with TestClient(app, base_url="http://127.0.0.1/scim/v2/") as http:
        http.headers["Authorization"] = f"Bearer {SCIM_TOKEN}"
        yield HttpxSCIMClient(http)


def test_scim2_tester_finds_no_failure(scim_client: HttpxSCIMClient) -> None:
    results = check_server(scim_client)
    failures = [
        f"{result.title}: {result.reason}" for result in results if result.status == Status.ERROR
    ]
    assert failures == [], "\n".join(failures)
