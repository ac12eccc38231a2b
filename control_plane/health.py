"""Liveness and readiness of the control plane itself."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.datastructures import State
from sqlalchemy import text

from control_plane.core.migrations import at_head
from control_plane.core.web import plane


class HealthController(Controller):
    include_in_schema = True
    tags = ["health"]

    @get("/healthz", operation_id="healthz", sync_to_thread=False)
    def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", operation_id="readyz", sync_to_thread=True)
    def readyz(self, state: State) -> Response[dict[str, Any]]:
        sessions = plane(state).sessions
        try:
            with sessions() as session:
                session.execute(text("SELECT 1"))
                migrated = at_head(session.connection())
        except Exception as exc:
            return Response(
                {"status": "not ready", "reason": f"database: {type(exc).__name__}"},
                status_code=503,
            )
        if not migrated:
            return Response(
                {
                    "status": "not ready",
                    "reason": "database schema is not at head: run `backlot migrate`",
                },
                status_code=503,
            )
        return Response({"status": "ready"}, status_code=200)
