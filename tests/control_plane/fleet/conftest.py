"""The admin API through the real app, on PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.core.settings import Settings
from control_plane.fleet import operators

Client = TestClient  # type: ignore[type-arg]
TokenMaker = Callable[..., dict[str, str]]


@pytest.fixture
def broker(settings: Settings) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(settings.resolved_broker_url)
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def client(
    settings: Settings, sessions: sessionmaker[Session], broker: redis.Redis
) -> Iterator[Client]:
    with TestClient(app=create_app(settings, sessions=sessions)) as test_client:
        yield test_client


@pytest.fixture
def token(db_session: Session) -> TokenMaker:
    """Authorization headers for a new operator token with the given scopes."""

    def make(*scopes: str, operator: str = "ops@vendor.example") -> dict[str, str]:
        _, plain = operators.issue(db_session, name="test", operator=operator, scopes=list(scopes))
        db_session.commit()
        return {"Authorization": f"Bearer {plain}"}

    return make
