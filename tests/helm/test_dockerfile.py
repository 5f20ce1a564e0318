"""The Dockerfile and .dockerignore, linted for what the chart relies on.

No container engine runs here, so the image is never built in tests; these checks parse the
Dockerfile (continuations joined, comments dropped) and assert the properties the chart and
docs/helm.md promise: built on SchedMD Slinky's slurmctld image of the Slurm release given as a
build argument (so its client is that release's), numeric non-root USER matching the chart's
runAsUser (Slinky's SlurmUser), read-only-root friendly, no remote fetches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((ROOT / "helm/syncd/values.yaml").read_text())
    return values


def dockerfile_instructions() -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    logical = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, rest = logical.partition(" ")
        yield keyword.upper(), rest.strip()
        logical = ""
    assert not logical, "dangling line continuation"


def final_stage() -> list[tuple[str, str]]:
    instructions = list(dockerfile_instructions())
    starts = [i for i, (k, _) in enumerate(instructions) if k == "FROM"]
    return instructions[starts[-1] :]


def build_args() -> dict[str, str]:
    return dict(a.split("=", 1) for k, a in dockerfile_instructions() if k == "ARG" and "=" in a)


def test_dockerfile_builds_on_slinkys_slurmctld_image_of_a_release_given_as_build_arg() -> None:
    args = build_args()
    assert re.fullmatch(r"\d\d\.(05|11)", args["SLURM_VERSION"]), args
    assert args["SLURM_IMAGE"] == (
        "ghcr.io/slinkyproject/slurmctld:${SLURM_VERSION}-ubuntu26.04")
    froms = [rest.split()[0] for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    assert froms == ["${SLURM_IMAGE}", "${SLURM_IMAGE}"], "build and run on the same base"


def test_the_default_release_is_the_newest_slinky_chart_in_the_docs() -> None:
    """docs/helm.md maps Slinky's slurm chart versions to Slurm releases and image tags; the
    default build argument is the newest of them."""
    text = (ROOT / "docs" / "helm.md").read_text()
    rows = re.findall(r"^\s*\| `(\d+\.\d+)\.x[^|]*\| (\d\d\.\d\d) \| `([^`]+)` \|", text, re.M)
    assert rows, "docs/helm.md has no Slinky version table"
    newest = max(rows, key=lambda r: tuple(int(x) for x in r[0].split(".")))
    assert newest[1] == build_args()["SLURM_VERSION"]
    assert newest[2] == f"{newest[1]}-ubuntu26.04"


def test_dockerfile_runs_syncd_as_non_root() -> None:
    stage = final_stage()
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd.
    assert uid.isdigit()
    assert int(uid) > 0
    assert not gid or int(gid) > 0
    assert int(uid) == chart_values()["podSecurityContext"]["runAsUser"]
    entry = [json.loads(rest) for keyword, rest in stage if keyword == "ENTRYPOINT"]
    cmd = [json.loads(rest) for keyword, rest in stage if keyword == "CMD"]
    assert entry[-1] == ["syncd"]
    assert cmd[-1] == ["run", "--config", "/etc/syncd/syncd.yaml"]


def test_dockerfile_suits_a_read_only_root_filesystem() -> None:
    stage = final_stage()
    env = " ".join(rest for keyword, rest in stage if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "SYNCD_CONFIG=/etc/syncd/syncd.yaml" in env  # `kubectl exec -- syncd status`
    volumes = " ".join(rest for keyword, rest in stage if keyword == "VOLUME")
    assert "/var/lib/syncd" in volumes


def test_dockerfile_installs_python_and_nothing_remote() -> None:
    instructions = list(dockerfile_instructions())
    runs = " ".join(rest for keyword, rest in final_stage() if keyword == "RUN")
    assert "apt-get install" in runs
    assert "python3" in runs and "${SLURM_PACKAGES}" in runs  # the client comes from the base
    assert "--no-install-recommends" in runs
    assert "rm -rf /var/lib/apt/lists/*" in runs
    assert "getent passwd slurm" in runs, "Slurm's client must resolve SlurmUser=slurm"
    for keyword, rest in instructions:
        assert keyword != "ADD", "use COPY; ADD fetches URLs and unpacks archives"
        assert keyword != "HEALTHCHECK", "Kubernetes probes /livez"
        assert "curl " not in rest
        assert "wget " not in rest


def test_dockerignore_keeps_the_build_context_to_what_the_dockerfile_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            for source in sources:
                assert source.rstrip("/") in allowed, f"{source} is excluded from the context"
                assert (ROOT / source).exists(), source


def test_the_image_copies_only_the_product() -> None:
    """The simulator, the tests and the benchmarks stay out of the image (docs/kubesim.md)."""
    sources = set()
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            *found, _ = rest.split()
            sources |= {s.rstrip("/") for s in found}
    assert sources == {"pyproject.toml", "README.md", "syncd"}, sources
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {ln.strip()[1:].rstrip("/") for ln in lines if ln.strip().startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "syncd"}, allowed
