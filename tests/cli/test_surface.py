"""The command line's surface, as a user meets it: help, completion in real shells, config
problems, a closed pipe. (The commands against a running daemon are in tests/e2e/test_cli.py.)"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.cli.main import build_parser
from tests.fixtures.tools import missing

ROOT = Path(__file__).resolve().parents[2]


def syncd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    return subprocess.run([sys.executable, "-m", "syncd", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=60, check=False, cwd=ROOT)


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every command and sub-command by its full name (the simulator is test infrastructure)."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(name: str, p: argparse.ArgumentParser) -> None:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for child_name, child in a.choices.items():
                    if child_name != "sim":
                        out[f"{name} {child_name}".strip()] = child
                        walk(f"{name} {child_name}", child)

    walk("", build_parser())
    return out


def test_every_option_has_help_and_numbers_have_units() -> None:
    bare = []
    for name, p in commands().items():
        for a in p._actions:
            if isinstance(a, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not (a.help or "").strip():
                bare.append(f"{name} {a.option_strings or a.dest}")
            if a.type in (int, float):
                assert a.metavar in ("SECONDS", "N"), (name, a.option_strings)
                if a.metavar == "SECONDS":
                    assert "second" in (a.help or ""), (name, a.option_strings)
    assert bare == []


def test_every_command_shows_an_example_and_every_default() -> None:
    assert len(commands()) >= 10
    for name, p in commands().items():
        text = p.format_help()
        if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions):
            assert "\nexamples:\n  syncd " + name.split()[0] in text, name
        for a in p._actions:
            if a.option_strings and a.default not in (None, False, [], argparse.SUPPRESS) \
                    and not isinstance(a, argparse._HelpAction):
                assert f"(default: {a.default})" in " ".join(text.split()), (name, a.dest)


def test_run_options_say_their_defaults() -> None:
    text = " ".join(syncd("run", "--help").stdout.split())
    assert "--config FILE the config file ($SYNCD_CONFIG when set) (default: " in text
    assert "--log-format {json,text} json (one object per line) or text (default: " \
           "logging.format)" in text


def test_status_help_explains_the_gpu_columns() -> None:
    assert "GPU A/H/U: allocatable in Kubernetes / held by" in syncd("status", "--help").stdout


def _bash_complete(script: str, words: list[str]) -> list[str]:
    line = " ".join(f"'{w}'" for w in words)
    probe = (f"source {script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
             "_syncd; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    out = subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, text=True,
                         timeout=30, check=True)
    assert out.stderr == "", out.stderr
    return out.stdout.split()


@pytest.fixture
def completion(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for shell in ("bash", "zsh"):
        out = syncd("completion", shell)
        assert out.returncode == 0, out.stderr
        files[shell] = tmp_path / f"syncd.{shell}"
        files[shell].write_text(out.stdout)
    return files


def test_bash_completes_commands_options_and_values(completion: dict[str, Path]) -> None:
    script = str(completion["bash"])
    assert _bash_complete(script, ["syncd", "dr"]) == ["drain"]
    assert _bash_complete(script, ["syncd", "status", "-o", ""]) == ["table", "wide", "json",
                                                                     "yaml"]
    assert _bash_complete(script, ["syncd", "events", ""]) == ["tail"]
    assert _bash_complete(script, ["syncd", "events", "tail", "--from"]) == ["--from-start"]
    assert _bash_complete(script, ["syncd", "breaker", ""]) == ["status", "reset"]
    assert "--watch" in _bash_complete(script, ["syncd", "status", "--w"])
    assert _bash_complete(script, ["syncd", "status", "--timeout", ""]) == []  # a number
    assert _bash_complete(script, ["syncd", "run", "--config", str(ROOT / "pyproject.to")]) == [
        str(ROOT / "pyproject.toml")]


def test_zsh_loads_the_completion_and_completes(completion: dict[str, Path]) -> None:
    zsh = shutil.which("zsh")
    if zsh is None:
        missing("zsh", "scripts/bootstrap installs it")
    probe = (f"source {completion['zsh']}\n"
             "print -r -- ${_comps[syncd]}\n"
             "emulate sh -c 'COMP_WORDS=(syncd status -o \"\"); COMP_CWORD=3; _syncd; "
             "echo \"${COMPREPLY[@]}\"'\n")
    out = subprocess.run([zsh, "-f", "-c", probe], capture_output=True, text=True, timeout=30,
                         check=False, env={**os.environ, "HOME": str(completion["zsh"].parent)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["_bash_complete -F _syncd", "table wide json yaml"], out


def test_a_closed_pipe_ends_quietly_with_141() -> None:
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write: EPIPE, every time
    try:
        p = subprocess.run([sys.executable, "-m", "syncd", "completion", "bash"], stdout=w,
                           stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(w)
    assert p.returncode == 141
    assert p.stderr == ""


# --- config problems ---------------------------------------------------------------------


def test_check_config_names_the_file_once_and_variables_as_variables(tmp_path: Path) -> None:
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text("policy:\n  drain_aftr: 3s\n  resume_after: 1m\n")
    out = syncd("check-config", str(cfg), env={"SYNCD_POLICY__RESUME_AFTER": "soon",
                                               "SYNCD_URL": "http://127.0.0.1:9"})
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert lines[0] == f"{cfg}: 2 problems (1 in the environment)"
    assert lines[1] == "  policy.drain_aftr: unknown key (did you mean 'drain_after'?)"
    assert lines[2] == ("  SYNCD_POLICY__RESUME_AFTER (environment variable): policy.resume_after"
                        ": 'soon' is not a duration such as 30s, 5m or 250ms")
    assert out.stderr.count(str(cfg)) == 1
    assert len(lines) == 3  # SYNCD_URL is the CLI's own variable, not a config override


def test_check_config_one_problem_is_one_line(tmp_path: Path) -> None:
    out = syncd("check-config", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2
    assert out.stderr == f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory\n"


def test_check_config_fails_on_paths_that_do_not_exist(tmp_path: Path) -> None:
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(f"kubernetes:\n  kubeconfig: {tmp_path}/kc\nslurm:\n  conf: {tmp_path}/sc\n"
                   f"  bin_dir: {tmp_path}/bin\n")
    out = syncd("check-config", str(cfg))
    assert out.returncode == 2
    assert f"  kubernetes.kubeconfig: {tmp_path}/kc does not exist" in out.stderr
    assert f"  slurm.conf: {tmp_path}/sc does not exist" in out.stderr
    assert f"  slurm.bin_dir: {tmp_path}/bin is not a directory" in out.stderr
    (tmp_path / "kc").write_text("x")
    (tmp_path / "sc").write_text("x")
    (tmp_path / "bin").mkdir()
    assert syncd("check-config", str(cfg)).stdout == f"{cfg}: ok\n"


def test_a_bad_variable_stops_run_with_its_name(tmp_path: Path) -> None:
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text("cluster: x\n")
    out = syncd("run", "--config", str(cfg), env={"SYNCD_DAEMON__DEBOUNCE": "-1s"})
    assert out.returncode == 2
    assert out.stderr.splitlines()[0].startswith(
        f"{cfg}: 1 problem (1 in the environment)"), out.stderr
    assert "SYNCD_DAEMON__DEBOUNCE (environment variable): daemon.debounce:" in out.stderr
    assert "Traceback" not in out.stderr


def test_no_kubeconfig_outside_a_pod_is_one_line_saying_what_to_set(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "KUBECONFIG": ""}
    out = syncd("run", "--config", str(ROOT / "config" / "syncd.example.yaml"), env=env)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1, out.stderr
    assert re.search(r"no kubeconfig at \S+/\.kube/config, and this is not a pod .*: set "
                     r"kubernetes\.kubeconfig", out.stderr), out.stderr
