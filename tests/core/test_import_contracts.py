"""The app boundaries in pyproject.toml ([tool.importlinter]) hold, and they would catch a break.

`make lint` runs `lint-imports` too; this keeps a broken contract red in the test suite. The probe
tests copy the source tree, add one forbidden import and expect `lint-imports` (with our own
pyproject.toml) to fail naming it — so a contract that can no longer fail is noticed as well.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", str(cwd / "pyproject.toml")],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_are_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_app_has_a_place_in_the_layers():
    """A new app that no layer names would be free to import anything and be imported by anything."""
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    named = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    apps = {f"apps.{p.parent.name}" for p in (ROOT / "apps").glob("*/apps.py")}
    assert apps == named


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory):
    """The apps package and pyproject.toml, copied (Python files only) where a probe may be added."""
    dest = tmp_path_factory.mktemp("contracts")
    shutil.copytree(ROOT / "apps", dest / "apps", ignore=shutil.ignore_patterns("__pycache__", "*.html", "*.js"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


@pytest.mark.parametrize(
    "module,imported,contract",
    [
        ("apps.core.probe", "apps.conversations.models", "core imports no other app of ours"),
        ("apps.core.probe", "apps.accounts.signin", "core imports no other app of ours"),
        ("apps.tenants.probe", "apps.bots.models", "tenants imports nothing above it"),
        ("apps.channels.platforms.probe", "apps.conversations.models", "platforms and providers import nothing"),
        ("apps.llm.providers.probe", "apps.conversations.services", "platforms and providers import nothing"),
        ("apps.bots.probe", "apps.channels.models", "no app-level cycles"),
        ("apps.workflows.probe", "apps.configio.services", "no app-level cycles"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree_copy, module, imported, contract):
    probe = tree_copy.joinpath(*module.split(".")).with_suffix(".py")
    probe.write_text(f"import {imported}  # a probe: this import is forbidden\n")
    try:
        result = _lint(tree_copy)
    finally:
        probe.unlink()
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken
    assert f"{module} -> {imported}" in broken.replace("\n", "")
