"""The container images' Dockerfiles, checked statically.

There is no container engine on the test machines, so nothing here builds or runs an image:
the checks read the Dockerfiles' instructions. infra/images/README.md says how to build them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.deploy

IMAGES = Path(__file__).resolve().parents[2] / "infra" / "images"
DOCKERFILES = ["control-plane.Dockerfile", "tenant-runtime.Dockerfile"]
# An exact tag (three-part version, optionally with a variant) or a digest.
PINNED = re.compile(r"^[\w./-]+:(\d+\.\d+\.\d+[\w.-]*)(@sha256:[a-f0-9]{64})?$|^[\w./-]+@sha256:")


def _instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = (IMAGES / name).read_text()
    logical = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    ))  # fmt: skip
    pairs = []
    for line in logical.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def _stages(name: str) -> list[list[str]]:
    """FROM lines split into words: [image, "AS", stage]."""
    return [args.split() for keyword, args in _instructions(name) if keyword == "FROM"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_image_is_built_in_stages_from_pinned_bases(name: str) -> None:
    stages = _stages(name)
    external = [words[0] for words in stages if words[0] not in {s[-1] for s in stages}]

    assert len(stages) >= 3  # uv, builder, runtime
    assert [words[-1] for words in stages][-2:] == ["builder", "runtime"]
    assert all(PINNED.match(image) for image in external), external
    assert not any(":latest" in image or ":" not in image for image in external)
    assert stages[-1][0].startswith("python:3.11.")
    assert stages[-1][0].endswith("-slim-bookworm")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dependencies_come_from_the_lock_without_dev_tools(name: str) -> None:
    runs = [args for keyword, args in _instructions(name) if keyword == "RUN"]

    assert any("uv sync --frozen --no-dev --no-editable" in run for run in runs)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_image_runs_as_numeric_non_root_user(name: str) -> None:
    users = [args for keyword, args in _instructions(name) if keyword == "USER"]

    assert users[-1] == "10001:10001"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_image_has_a_healthcheck_against_healthz(name: str) -> None:
    (check,) = [args for keyword, args in _instructions(name) if keyword == "HEALTHCHECK"]

    assert "urllib.request" in check
    assert "/healthz" in check


def test_the_tenant_runtime_takes_its_subcommand_as_args() -> None:
    # The kubernetes driver runs the image with `args: ["migrate"]` and `args: ["serve"]`.
    instructions = dict(_instructions("tenant-runtime.Dockerfile"))

    assert json.loads(instructions["ENTRYPOINT"]) == ["python", "-m", "tenant_runtime"]
    assert json.loads(instructions["CMD"]) == ["serve"]


def test_the_control_plane_image_runs_any_command() -> None:
    # The chart sets `command:` to `backlot migrate`, `uvicorn ...` or `celery ...`.
    instructions = dict(_instructions("control-plane.Dockerfile"))

    assert json.loads(instructions["ENTRYPOINT"]) == []
    assert json.loads(instructions["CMD"])[:2] == ["uvicorn", "control_plane.app:create_app"]
