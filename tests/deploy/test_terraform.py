"""The Terraform foundation under terraform/: formatted, parseable, documented, wired, and clean
under checkov.

The provider registry is unreachable here, so `terraform validate` cannot run; these checks
are the static part of it (see terraform/README.md for validate where the registry answers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

pytestmark = pytest.mark.deploy

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "terraform"
EXAMPLE_DIR = TERRAFORM_DIR / "examples" / "production"

# Every directory holding .tf files is a root module or a module: modules/*, modules/storage/bucket
# and examples/production.
MODULE_DIRS = sorted({path.parent for path in TERRAFORM_DIR.rglob("*.tf")})
TF_FILES = sorted(TERRAFORM_DIR.rglob("*.tf"))

# Checkov runs as a uv tool in an environment of its own: it needs bc-python-hcl2, which installs
# the same `hcl2` package as python-hcl2 8 (which these tests parse with), so the two cannot share
# the project's virtualenv.
CHECKOV = "checkov==3.1.47"

# Findings accepted here, by (check, resource), each with the reason. Deliberate design choices
# are skipped inline in the Terraform instead (`#checkov:skip=...`), next to the choice.
CHECKOV_SKIPS = {
    ("CKV_AWS_339", "module.eks.aws_eks_cluster.this"): (
        "checkov 3.1.47 lists EKS versions up to 1.28 only; 1.34 is in EKS standard support"
    ),
}

META_ARGUMENTS = {"source", "version", "providers", "count", "for_each", "depends_on"}


def _name(label: str) -> str:
    """python-hcl2 8 keeps the quotes around block labels and strings."""
    return label.strip('"')


@cache
def _parse(path: Path) -> dict[str, Any]:
    version = getattr(hcl2, "__version__", "none")
    if not version.startswith("8."):
        pytest.fail(
            f"the `hcl2` module in the virtualenv is not python-hcl2 8 (found {version}): "
            "bc-python-hcl2, pulled in by checkov, overwrites it. Keep checkov out of the "
            "project's dependencies (this test runs it with `uv tool run`) and `uv sync` again.",
            pytrace=False,
        )
    with path.open() as handle:
        parsed: dict[str, Any] = hcl2.load(handle)
    return parsed


def _blocks(module_dir: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Every `kind` block (variable, output, module) of a module, by name."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(module_dir.glob("*.tf")):
        for entry in _parse(path).get(kind, []):
            for label, body in entry.items():
                found[_name(label)] = body
    return found


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _terraform() -> str:
    found = shutil.which("terraform") or (
        "/usr/local/bin/terraform" if Path("/usr/local/bin/terraform").exists() else None
    )
    if found is None:
        pytest.fail(
            "terraform is not installed: download the zip for your platform from "
            "https://releases.hashicorp.com/terraform/ and put the `terraform` binary on PATH "
            "(or /usr/local/bin/terraform); `fmt` needs no provider or registry.",
            pytrace=False,
        )
    return found


def test_terraform_files_are_formatted() -> None:
    result = subprocess.run(
        [_terraform(), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, (
        f"run `terraform fmt -recursive terraform/`:\n{result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize("path", TF_FILES, ids=_rel)
def test_terraform_file_parses(path: Path) -> None:
    parsed = _parse(path)

    assert parsed, f"{_rel(path)} parsed to nothing"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_rel)
def test_every_variable_has_a_description_and_a_type(module_dir: Path) -> None:
    variables = _blocks(module_dir, "variable")

    undocumented = sorted(
        name
        for name, body in variables.items()
        if not _name(str(body.get("description", ""))).strip() or "type" not in body
    )

    assert undocumented == [], f"{_rel(module_dir)}: variables without description or type"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_rel)
def test_every_output_has_a_description(module_dir: Path) -> None:
    outputs = _blocks(module_dir, "output")

    undocumented = sorted(
        name
        for name, body in outputs.items()
        if not _name(str(body.get("description", ""))).strip()
    )

    assert undocumented == [], f"{_rel(module_dir)}: outputs without description"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_rel)
def test_versions_are_pinned_with_pessimistic_constraints(module_dir: Path) -> None:
    terraform_blocks = _parse(module_dir / "versions.tf")["terraform"]
    required_version = _name(terraform_blocks[0]["required_version"])
    providers = {
        name: _name(spec["version"])
        for block in terraform_blocks[0]["required_providers"]
        for name, spec in block.items()
        if not name.startswith("__")
    }

    constraints = {"terraform": required_version, **providers}

    assert {name: c.startswith("~>") for name, c in constraints.items()} == dict.fromkeys(
        constraints, True
    ), constraints
    assert providers.get("aws", "").startswith("~> 5."), providers


def _example_modules() -> list[tuple[str, Path, dict[str, Any]]]:
    modules = _blocks(EXAMPLE_DIR, "module")
    return [
        (name, (EXAMPLE_DIR / _name(body["source"])).resolve(), body)
        for name, body in sorted(modules.items())
    ]


def test_example_composes_every_module() -> None:
    composed = {source for _, source, _ in _example_modules()}
    top_level = {path for path in (TERRAFORM_DIR / "modules").iterdir() if path.is_dir()}

    assert sorted(map(_rel, top_level - composed)) == []


@pytest.mark.parametrize(
    ("name", "source", "body"), _example_modules(), ids=[m[0] for m in _example_modules()]
)
def test_example_passes_every_required_variable(
    name: str, source: Path, body: dict[str, Any]
) -> None:
    required = {var for var, spec in _blocks(source, "variable").items() if "default" not in spec}
    passed = set(body) - META_ARGUMENTS - {"__is_block__"}

    assert sorted(required - passed) == [], f"module {name!r} misses required variables"


@pytest.mark.parametrize(
    ("name", "source", "body"), _example_modules(), ids=[m[0] for m in _example_modules()]
)
def test_example_passes_only_declared_variables(
    name: str, source: Path, body: dict[str, Any]
) -> None:
    declared = set(_blocks(source, "variable"))
    passed = set(body) - META_ARGUMENTS - {"__is_block__"}

    assert sorted(passed - declared) == [], f"module {name!r} is given unknown arguments"


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed: run `make uv` (or `python3 -m pip install uv`).")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_GITHUB_CONFIG_FETCH_DATA": "False"}
    result = subprocess.run(
        [
            uv, "tool", "run", "--from", CHECKOV, "checkov",
            "-d", str(TERRAFORM_DIR),
            "--framework", "terraform",
            "--quiet", "--compact", "--skip-download",
            "-o", "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
        cwd=REPO,
    )  # fmt: skip
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov printed no JSON (exit {result.returncode}); `uv tool run` needs PyPI "
            f"(or its cache) the first time:\n{result.stdout[-2000:]}{result.stderr[-2000:]}",
            pytrace=False,
        )
    reports = report if isinstance(report, list) else [report]
    terraform_reports = [r for r in reports if r.get("check_type") == "terraform"]
    assert len(terraform_reports) == 1, result.stdout[-2000:]
    terraform_report: dict[str, Any] = terraform_reports[0]
    return terraform_report


def _failed(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (check["check_id"], check["resource"]): f"{check['file_path']}: {check['check_name']}"
        for check in report.get("results", {}).get("failed_checks", [])
    }


def test_checkov_parses_every_file(checkov_report: dict[str, Any]) -> None:
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["resource_count"] > 0


def test_checkov_finds_nothing_outside_the_skip_list(checkov_report: dict[str, Any]) -> None:
    failed = _failed(checkov_report)

    unexpected = {key: where for key, where in failed.items() if key not in CHECKOV_SKIPS}

    assert unexpected == {}


def test_checkov_skip_list_holds_only_live_findings(checkov_report: dict[str, Any]) -> None:
    failed = _failed(checkov_report)

    stale = sorted(key for key in CHECKOV_SKIPS if key not in failed)

    assert stale == [], "these findings are gone: drop them from CHECKOV_SKIPS"
