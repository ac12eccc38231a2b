"""Console login and logout."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from control_plane.core.web import DbSession
from control_plane.identity.service import LoginFailed, authenticate

log = structlog.get_logger(__name__)


def _safe_next(target: str) -> str:
    # Only paths on this site: never an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/console"


class LoginController(Controller):
    include_in_schema = False

    @get("/login", name="login", sync_to_thread=False)
    def login_form(
        self, next_: Annotated[str, QueryParameter(name="next")] = "/console"
    ) -> Template:
        context = {"values": {"next": _safe_next(next_)}, "errors": {}}
        return Template(template_name="login.html", context=context)

    @post("/login", sync_to_thread=True, status_code=200)
    def login(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        email = data.get("email", "")
        try:
            user = authenticate(db_session, email, data.get("password", ""))
        except LoginFailed as exc:
            log.info("login.failed")
            return Template(
                template_name="login.html",
                context={
                    "values": {"email": email, "next": data.get("next", "")},
                    "errors": {"form": exc.message},
                },
                status_code=401,
            )
        # A fresh session on login: nothing from before it survives.
        request.clear_session()
        request.set_session({"user_id": str(user.id)})
        log.info("login.succeeded", user_id=str(user.id))
        return Redirect(path=_safe_next(data.get("next", "/console")), status_code=303)

    @post("/logout", sync_to_thread=False, status_code=303)
    def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        request.clear_session()
        return Redirect(path="/login", status_code=303)
