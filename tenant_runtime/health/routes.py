"""`/healthz` says the process is alive; `/readyz` says it can serve its catalog."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.datastructures import State

from tenant_runtime.core.schema import schema_status


class HealthController(Controller):
    include_in_schema = False

    @get("/healthz", sync_to_thread=False)
    def liveness(self, state: State) -> dict[str, str]:
        """Alive: answers without touching the database, so a slow DB never restarts us."""
        return {"status": "ok", "tenant_id": state.settings.tenant_id}

    @get("/readyz", sync_to_thread=True)
    def readiness(self, state: State) -> Response[dict[str, str]]:
        """Ready when the database answers and its schema is at the migrations' head."""
        status = schema_status(state.engine, state.schema_heads)
        if status.ready:
            return Response({"status": "ready"}, status_code=200)
        return Response({"status": "not ready", "reason": status.reason or ""}, status_code=503)
