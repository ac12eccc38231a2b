"""``backlot fleet`` against the real admin API (the app in-process, on PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from control_plane.cli import main
from control_plane.fleet.cli import Api
from tests.control_plane.factories import make_tenant
from tests.control_plane.fleet.conftest import Client, TokenMaker

pytestmark = [pytest.mark.fleet, pytest.mark.integration]


def _run(client: Client, headers: dict[str, str], *args: str) -> Result:
    api = Api(client, headers["Authorization"].removeprefix("Bearer "))
    return CliRunner().invoke(main, ["fleet", *args], obj={"api": api})


def test_the_tenant_list_prints_json_for_scripts(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    _, _, tenant = make_tenant(db_session)
    db_session.commit()
    result = _run(client, token("read"), "tenants", "list", "--json")
    assert [t["slug"] for t in json.loads(result.output)["items"]] == [tenant.slug]


def test_the_tenant_list_prints_a_table_for_people(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    _, _, tenant = make_tenant(db_session)
    db_session.commit()
    result = _run(client, token("read"), "tenants", "list", "--state", "pending")
    assert (
        result.exit_code,
        tenant.slug in result.output,
        "Tenants 1-1 of 1" in result.output,
    ) == (
        0,
        True,
        True,
    )


def test_a_refused_action_exits_with_the_apis_message(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    _, _, tenant = make_tenant(db_session)
    db_session.commit()
    result = _run(client, token("read"), "tenants", "suspend", tenant.slug)
    assert (result.exit_code, result.output.strip()) == (
        1,
        "Error: 403: this token lacks the 'operate' scope",
    )


def test_bulk_is_a_dry_run_unless_told_to_execute(
    client: Client, db_session: Session, token: TokenMaker
) -> None:
    made = [make_tenant(db_session)[2] for _ in range(2)]
    db_session.commit()
    headers = token("operate")
    dry = _run(client, headers, "bulk", "suspend", "--plan", "free")
    db_session.expire_all()
    suspended_after_dry_run = [t.suspended for t in made]
    real = _run(client, headers, "bulk", "suspend", "--plan", "free", "--execute")
    db_session.expire_all()
    assert (
        "dry run: suspend would act on 2 tenant(s)" in dry.output,
        suspended_after_dry_run,
        real.exit_code,
        [t.suspended for t in made],
    ) == (True, [False, False], 0, [True, True])


def test_a_release_is_registered_and_listed(client: Client, token: TokenMaker) -> None:
    headers = token("read", "release")
    _run(client, headers, "releases", "register", "1.4.0", "registry.example/runtime:1.4.0")
    listed = _run(client, headers, "releases", "list", "--json")
    assert [(r["version"], r["image"]) for r in json.loads(listed.output)] == [
        ("1.4.0", "registry.example/runtime:1.4.0")
    ]


def test_the_cli_says_how_to_configure_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKLOT_ADMIN_URL", raising=False)
    result = CliRunner().invoke(main, ["fleet", "summary"])
    assert "set BACKLOT_ADMIN_URL" in result.output
