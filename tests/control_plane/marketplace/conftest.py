from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.settings import Settings
from control_plane.identity.models import Organization, User
from control_plane.marketplace import purchases
from control_plane.marketplace.seed import seed
from control_plane.tenants.models import Tenant
from tests.control_plane.factories import make_tenant
from tests.control_plane.marketplace.live import RuntimeProcess, run_runtime, serve_control_plane


@pytest.fixture(autouse=True)
def no_billing_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    """Purchases start unavailable, as in an app without billing, whatever ran before: an
    app built with Stripe settings installs billing's gateway process-wide."""
    monkeypatch.setattr(purchases, "GATEWAY", purchases.UnavailablePurchaseGateway())


@pytest.fixture
def committed(committed_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions that really commit: a served control plane and the test both use the database
    at once, which one shared connection cannot carry. Each test makes its own tenant."""
    return committed_sessions


@pytest.fixture
def owned_tenant(committed: sessionmaker[Session]) -> tuple[User, Organization, Tenant]:
    with committed() as session:
        user, organization, tenant = make_tenant(session)
        seed(session)
        session.commit()
        return user, organization, tenant


@pytest.fixture
def tenant(owned_tenant: tuple[User, Organization, Tenant]) -> Tenant:
    return owned_tenant[2]


@pytest.fixture
def control_plane(
    settings: Settings, committed: sessionmaker[Session]
) -> Iterator[tuple[str, Settings]]:
    with serve_control_plane(settings, committed) as served:
        yield served


@pytest.fixture
def runtime(
    tmp_path: Path, tenant: Tenant, control_plane: tuple[str, Settings]
) -> Iterator[RuntimeProcess]:
    url, settings = control_plane
    with run_runtime(tmp_path / "runtime", tenant, settings, url) as process:
        yield process
