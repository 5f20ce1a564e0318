"""The layering is a test: import-linter's contracts from pyproject.toml must hold, cover every
module of the package, and fail when an import goes the wrong way."""

from __future__ import annotations

import pkgutil
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import syncd

ROOT = Path(__file__).resolve().parents[2]
LINTER = Path(sys.executable).with_name("lint-imports")


def _contracts() -> list[dict[str, object]]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    out: list[dict[str, object]] = cfg["tool"]["importlinter"]["contracts"]
    return out


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINTER), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          check=False, env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def test_import_contracts_hold() -> None:
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    n = len(_contracts())
    assert f"{n} kept, 0 broken" in r.stdout  # every contract in pyproject.toml was checked


def test_every_module_is_in_a_layer() -> None:
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    assert isinstance(layers, list)
    prefixes = [p.strip() for layer in layers for p in str(layer).split("|")]
    modules = [m.name for m in pkgutil.walk_packages(syncd.__path__, "syncd.")]
    outside = [m for m in modules if not any(m == p or m.startswith(p + ".") for p in prefixes)
               ]
    assert modules and outside == []


@pytest.mark.parametrize(("module", "line"), [
    ("syncd/config.py", "import syncd.cli.main"),  # config above the CLI
    ("syncd/core/planner.py", "import syncd.engine.reconciler"),  # the core importing I/O
    ("syncd/kube/state.py", "import syncd.slurm.parse"),  # one adapter knowing another
    ("syncd/engine/reconciler.py", "import syncd.engine.http"),  # the pass knowing HTTP
    ("syncd/settings/kube.py", "import syncd.settings.slurm"),  # settings knowing each other
])
def test_a_wrong_import_breaks_a_contract(tmp_path: Path, module: str, line: str) -> None:
    for package in ("syncd", "kubesim"):
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    text = target.read_text()
    # after the module's own imports, so the file still parses
    target.write_text(re.sub(r"\n\n\n", f"\n{line}  # noqa\n\n\n", text, count=1))
    r = _lint(tmp_path)
    assert r.returncode != 0 and "BROKEN" in r.stdout, r.stdout[-2000:]


def test_no_module_of_the_product_is_over_300_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "syncd").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}  # one job per module: split a module that grows past this
