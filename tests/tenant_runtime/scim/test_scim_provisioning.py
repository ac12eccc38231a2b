"""SCIM provisioning as the portal feels it: users, deactivation, groups that drive roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from structlog.testing import capture_logs

from tests.support.dex import DexServer
from tests.tenant_runtime.auth.conftest import ControlPlaneKeys, oidc_section, sso_section
from tests.tenant_runtime.auth.oidc_flow import oidc_login
from tests.tenant_runtime.scim.conftest import SCIM_TOKEN, SCIM_TOKEN_SHA256

pytestmark = pytest.mark.sso

AUTH = {"Authorization": f"Bearer {SCIM_TOKEN}"}
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def scim(portal: TestClient[Litestar], app: Litestar) -> TestClient[Litestar]:
    app.state.sso_state.set_sso(sso_section(scim_token_sha256=SCIM_TOKEN_SHA256))
    return portal


def _create_user(scim: TestClient[Litestar], email: str) -> str:
    response = scim.post(
        "/scim/v2/Users",
        json={
            "schemas": [USER_SCHEMA],
            "userName": email,
            "displayName": email.split("@", maxsplit=1)[0].title(),
            "emails": [{"value": email, "primary": True}],
        },
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _deactivate(scim: TestClient[Litestar], user_id: str) -> None:
    response = scim.patch(
        f"/scim/v2/Users/{user_id}",
        json={
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
        headers=AUTH,
    )
    assert response.status_code == 200, response.text


def _group(scim: TestClient[Litestar], name: str, members: list[str]) -> str:
    response = scim.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": name,
            "members": [{"value": member} for member in members],
        },
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_wrong_token_is_refused(scim: TestClient[Litestar]) -> None:
    with capture_logs() as logs:
        response = scim.get("/scim/v2/Users", headers={"Authorization": "Bearer nope"})
    assert (response.status_code, logs[0]["event"]) == (401, "scim.bad_token")


def test_scim_is_closed_without_a_configured_token(
    portal: TestClient[Litestar], app: Litestar
) -> None:
    app.state.sso_state.set_sso(sso_section(scim_token_sha256=None))
    assert portal.get("/scim/v2/Users", headers=AUTH).status_code == 401


def test_a_refusal_is_a_scim_error(scim: TestClient[Litestar]) -> None:
    body = scim.get("/scim/v2/Users", headers={"Authorization": "Bearer nope"}).json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_a_filter_finds_one_user(scim: TestClient[Litestar]) -> None:
    _create_user(scim, "ada@example.com")
    _create_user(scim, "grace@example.com")
    response = scim.get(
        "/scim/v2/Users", params={"filter": 'userName eq "grace@example.com"'}, headers=AUTH
    )
    assert [r["userName"] for r in response.json()["Resources"]] == ["grace@example.com"]


def test_a_duplicate_user_name_is_a_conflict(scim: TestClient[Litestar]) -> None:
    _create_user(scim, "ada@example.com")
    response = scim.post(
        "/scim/v2/Users",
        json={"schemas": [USER_SCHEMA], "userName": "ada@example.com"},
        headers=AUTH,
    )
    assert (response.status_code, response.json()["scimType"]) == (409, "uniqueness")


def test_a_provisioned_user_signs_in_as_themselves(
    scim: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    user_id = _create_user(scim, "ada@example.com")
    scim.get("/auth/handoff", params={"ticket": control_plane.ticket(email="ada@example.com")})
    assert scim.get("/auth/me").json()["subject"] == user_id


def test_deactivation_ends_a_running_session_at_once(
    scim: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    user_id = _create_user(scim, "ada@example.com")
    scim.get("/auth/handoff", params={"ticket": control_plane.ticket(email="ada@example.com")})
    _deactivate(scim, user_id)
    assert scim.get("/auth/me").status_code == 401


def test_a_deactivated_user_cannot_sign_in(
    scim: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    _deactivate(scim, _create_user(scim, "ada@example.com"))
    response = scim.get(
        "/auth/handoff",
        params={"ticket": control_plane.ticket(email="ada@example.com")},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_an_updated_name_shows_in_the_session(
    scim: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    user_id = _create_user(scim, "ada@example.com")
    scim.get(
        "/auth/handoff",
        params={"ticket": control_plane.ticket(email="ada@example.com", name=None)},
    )
    scim.put(
        f"/scim/v2/Users/{user_id}",
        json={
            "schemas": [USER_SCHEMA],
            "userName": "ada@example.com",
            "displayName": "Ada Lovelace",
            "emails": [{"value": "ada@example.com", "primary": True}],
        },
        headers=AUTH,
    )
    assert scim.get("/auth/me").json()["name"] == "Ada Lovelace"


def test_a_mapped_group_gives_its_members_the_role(
    scim: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    user_id = _create_user(scim, "ada@example.com")
    scim.get(
        "/auth/handoff",
        params={"ticket": control_plane.ticket(email="ada@example.com", role="viewer")},
    )
    _group(scim, "portal-admins", [user_id])
    assert scim.get("/auth/me").json()["role"] == "admin"


def test_leaving_the_group_takes_the_role_away(
    scim: TestClient[Litestar], control_plane: ControlPlaneKeys
) -> None:
    user_id = _create_user(scim, "ada@example.com")
    group_id = _group(scim, "portal-admins", [user_id])
    scim.get(
        "/auth/handoff",
        params={"ticket": control_plane.ticket(email="ada@example.com", role="admin")},
    )
    scim.patch(
        f"/scim/v2/Groups/{group_id}",
        json={
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "remove", "path": f'members[value eq "{user_id}"]'}],
        },
        headers=AUTH,
    )
    assert scim.get("/auth/me").json()["role"] == "viewer"


def test_an_unknown_member_leaves_no_group_behind(scim: TestClient[Litestar]) -> None:
    response = scim.post(
        "/scim/v2/Groups",
        json={"schemas": [GROUP_SCHEMA], "displayName": "ghosts", "members": [{"value": "x"}]},
        headers=AUTH,
    )
    listed = scim.get("/scim/v2/Groups", headers=AUTH).json()
    assert (response.status_code, listed["totalResults"]) == (404, 0)


def test_scim_groups_count_at_sso_login(
    scim: TestClient[Litestar],
    dex: DexServer,
    configure_sso: Callable[[dict[str, Any] | None], None],
    app: Litestar,
) -> None:
    configure_sso(oidc_section(dex, scim_token_sha256=SCIM_TOKEN_SHA256))
    user_id = _create_user(scim, "alice@example.com")
    _group(scim, "developers", [user_id])
    # Dex's password users carry no groups: the role can only come from SCIM.
    oidc_login(scim, app.state.settings.portal_url, dex, email="alice@example.com")
    me = scim.get("/auth/me").json()
    assert (me["subject"], me["role"]) == (user_id, "member")


def test_a_scim_deactivated_user_is_refused_at_sso_login(
    scim: TestClient[Litestar],
    dex: DexServer,
    configure_sso: Callable[[dict[str, Any] | None], None],
    app: Litestar,
) -> None:
    configure_sso(oidc_section(dex, scim_token_sha256=SCIM_TOKEN_SHA256))
    _deactivate(scim, _create_user(scim, "alice@example.com"))
    response = oidc_login(scim, app.state.settings.portal_url, dex, email="alice@example.com")
    assert response.status_code == 403
