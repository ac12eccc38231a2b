from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from control_plane.core.settings import Settings
from control_plane.identity.models import Organization, User
from control_plane.marketplace.seed import seed
from control_plane.tenants.models import Tenant
from tests.control_plane.factories import make_tenant
from tests.control_plane.marketplace.live import RuntimeProcess, run_runtime, serve_control_plane


@pytest.fixture
def owned_tenant(sessions: sessionmaker[Session]) -> tuple[User, Organization, Tenant]:
    with sessions() as session:
        user, organization, tenant = make_tenant(session)
        seed(session)
        session.commit()
        return user, organization, tenant


@pytest.fixture
def tenant(owned_tenant: tuple[User, Organization, Tenant]) -> Tenant:
    return owned_tenant[2]


@pytest.fixture
def control_plane(
    settings: Settings, sessions: sessionmaker[Session]
) -> Iterator[tuple[str, Settings]]:
    with serve_control_plane(settings, sessions) as served:
        yield served


@pytest.fixture
def runtime(
    tmp_path: Path, tenant: Tenant, control_plane: tuple[str, Settings]
) -> Iterator[RuntimeProcess]:
    url, settings = control_plane
    with run_runtime(tmp_path / "runtime", tenant, settings, url) as process:
        yield process
