"""Finding the tenant-runtime processes this machine runs, from /proc."""

from __future__ import annotations

from pathlib import Path


def tenant_runtime_pids(tenant_id: str) -> list[int]:
    """Live (not zombie) tenant-runtime ``serve`` processes started for ``tenant_id``."""
    marker = f"BACKLOT_RUNTIME_TENANT_ID={tenant_id}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        serving = b"tenant_runtime" in cmdline and b"serve" in cmdline
        zombie = stat.rsplit(")", 1)[1].split()[0] == "Z"
        if serving and not zombie and marker in environ.split(b"\0"):
            pids.append(int(proc.name))
    return sorted(pids)


# A static service token the local runtimes started by a test accept: the local driver passes
# the control plane's environment on, so a test that sets BACKLOT_RUNTIME_SERVICE_TOKENS
# before a runtime starts can read that runtime's catalog API.
CATALOG_READER_TOKEN = "catalog-reader-token-for-tests"
CATALOG_READER_TOKENS = f'[{{"token": "{CATALOG_READER_TOKEN}", "subject": "tests"}}]'


def catalog_entities(runtime_url: str) -> list[dict[str, object]]:
    """The entities of a runtime started with ``CATALOG_READER_TOKENS`` in its environment."""
    import httpx  # noqa: PLC0415 - only the tests that read a catalog need it

    response = httpx.get(
        f"{runtime_url}/api/catalog/entities",
        headers={"authorization": f"Bearer {CATALOG_READER_TOKEN}"},
    )
    response.raise_for_status()
    entities: list[dict[str, object]] = response.json()
    return entities
