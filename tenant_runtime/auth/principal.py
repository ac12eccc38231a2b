"""Who is calling the runtime: a signed-in user or a configured service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrincipalKind = Literal["user", "service"]
Role = Literal["viewer", "member", "admin"]

# Roles in increasing power: a check for "member" admits members and admins.
ROLE_ORDER: dict[Role, int] = {"viewer": 0, "member": 1, "admin": 2}


@dataclass(frozen=True)
class Principal:
    """The caller of a request, as `request.scope["principal"]` carries it."""

    kind: PrincipalKind
    subject: str
    email: str | None = None
    name: str | None = None
    role: Role = "viewer"

    def has_role(self, role: Role) -> bool:
        return ROLE_ORDER[self.role] >= ROLE_ORDER[role]
