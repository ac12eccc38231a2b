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

from aiohttp import web
from localstripe import resources, server

from infra.stripe import localstripe_addons


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
    localstripe_addons.install()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(server.app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
