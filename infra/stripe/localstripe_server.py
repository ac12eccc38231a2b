"""Run localstripe on loopback with its own state file.

localstripe binds every interface and keeps its state in a fixed /tmp/localstripe.pickle
that two instances on one host would share. This entry point binds 127.0.0.1 on the given
port and points the state file at a private path, starting from scratch each time.
"""

from __future__ import annotations

import argparse
import logging
import pickle
from pathlib import Path
from typing import Any

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError

from infra.stripe import localstripe_addons


def accept_proration_behavior() -> None:
    """Let subscription updates carry ``proration_behavior``, as Stripe's API does.

    localstripe 1.15.10 takes it when creating a subscription but fails with a TypeError
    (a 500) when an update carries it. It knows the older name of the same switch,
    ``prorate``, so the parameter is renamed here and Backlot sends one request shape
    everywhere (that shape is checked against stripe-mock). localstripe adds its own
    "Unused time" item on every quantity change whatever the switch says, so tests do not
    read proration from its invoices.
    """
    original = resources.Subscription._update

    def update(
        self: resources.Subscription, proration_behavior: str | None = None, **data: Any
    ) -> Any:
        if proration_behavior is not None:
            if proration_behavior not in ("create_prorations", "always_invoice", "none"):
                raise UserError(400, "Bad request")
            data.setdefault("prorate", proration_behavior != "none")
        return original(self, **data)

    resources.Subscription._update = update  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()
    state: Path = args.state

    def dump_to_disk() -> None:
        with state.open("wb") as f:
            pickle.dump(dict(resources.store), f, protocol=pickle.HIGHEST_PROTOCOL)

    resources.store.dump_to_disk = dump_to_disk  # type: ignore[method-assign]
    resources.store.clear()
    accept_proration_behavior()
    localstripe_addons.install()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(server.app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
