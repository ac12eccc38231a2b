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
