"""The wheel holds what runs in production and nothing else: no simulator, no test token.

The wheel is built from this checkout with hatchling (a dev dependency, so no download), the
same backend ``pip install .`` in the Dockerfile uses.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)], capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (built,) = out.glob("syncd-*.whl")
    return built


def test_the_wheel_holds_only_syncd(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert "syncd" in tops
    assert {t for t in tops if not t.endswith(".dist-info")} == {"syncd"}, tops
    assert not [n for n in names if n.startswith(("kubesim/", "syncd/sim/", "tests/", "bench/"))]
    assert "syncd/cli/main.py" in names
    assert "syncd/cli/sim.py" not in names


def test_no_file_in_the_wheel_carries_the_simulator_token(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        carriers = [n for n in z.namelist() if b"sim-admin-token" in z.read(n)]
    assert carriers == []


def test_the_simulator_is_importable_in_the_dev_venv_only_through_the_checkout() -> None:
    import kubesim

    assert Path(kubesim.__file__).resolve().parent == ROOT / "kubesim"


def test_syncd_has_no_simulator_command() -> None:
    from syncd.cli.main import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    assert sub.choices is not None
    assert "sim" not in sub.choices
    assert {"run", "events"} <= set(sub.choices)
