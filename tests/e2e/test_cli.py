"""The runbook commands as on-call types them, against a real daemon (own Slurm sandbox, the
Kubernetes simulator, Redis): hostlists and several nodes, every output format, a closed
pipe, the --watch header, and which of daemon or Slurm is unreachable."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import yaml

from tests.e2e.stack import Stack, daemon_stack, stop_ctld
from tests.fixtures.brokers import Addr
from tests.fixtures.waiting import eventually_sync

NODES = 8


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_addr: Addr) -> Iterator[Stack]:
    stream = f"syncd-test-{uuid.uuid4().hex[:12]}:events"
    try:
        with daemon_stack(tmp_path_factory.mktemp("cli"), nodes=NODES,
                          redis_url=redis_addr.redis_url, stream=stream) as s:
            yield s
    finally:
        r = redis.Redis(host=redis_addr.host, port=redis_addr.port)
        r.delete(stream)
        r.close()


def syncd(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syncd", *args], capture_output=True,
                          text=True, env=stack.cli_env, timeout=60, check=False)


def state(stack: Stack, node: str) -> str:
    return stack.box.run("scontrol", "-o", "show", "node", node).stdout


def until(check: Callable[[], object], within: float, what: str) -> None:
    eventually_sync(check, within=within, what=what)


@pytest.mark.slow
def test_drain_why_and_resume_take_hostlists_and_several_nodes(stack: Stack) -> None:
    until(lambda: "gpu_avail_8" in state(stack, "gpu008"), 30, "initial sync")
    out = syncd(stack, "drain", "gpu[003-004]", "--reason", "x")
    assert out.returncode == 0, out.stderr
    assert [re.sub(r"#\w+$", "#", line) for line in out.stdout.splitlines()] == [
        "gpu003 drained: syncd: manual, x #", "gpu004 drained: syncd: manual, x #"]
    for node in ("gpu003", "gpu004"):
        assert "DRAIN" in state(stack, node) and "syncd: manual, x #" in state(stack, node)

    why = syncd(stack, "why", "gpu003", "gpu004")
    assert why.returncode == 0, why.stderr
    assert re.findall(r"^(gpu00\d): Kubernetes Ready; Slurm \S*DRAIN", why.stdout,
                      re.MULTILINE) == ["gpu003", "gpu004"]
    both = json.loads(syncd(stack, "why", "gpu[003-004]", "-o", "json").stdout)
    assert [i["report"]["name"] for i in both["items"]] == ["gpu003", "gpu004"]
    one = yaml.safe_load(syncd(stack, "why", "gpu003", "-o", "yaml").stdout)
    assert one["report"]["name"] == "gpu003" and one["memory"]["manual"] is True

    out = syncd(stack, "drain", "gpu005", "gpu006", "--reason", "y")
    assert out.returncode == 0, out.stderr
    assert all("syncd: manual, y #" in state(stack, n) for n in ("gpu005", "gpu006"))

    out = syncd(stack, "resume", "gpu[003-006]")
    assert out.returncode == 0, out.stderr
    assert [line.split()[0] for line in out.stdout.splitlines()] == [
        "gpu003", "gpu004", "gpu005", "gpu006"]
    assert not any("DRAIN" in state(stack, f"gpu00{n}") for n in range(3, 7))


def test_a_refused_node_is_reported_and_the_others_still_run(stack: Stack) -> None:
    stack.box.run("scontrol", "update", "NodeName=gpu007", "State=DRAIN", "Reason=ops: fan")
    try:
        out = syncd(stack, "why", "gpu007", "nosuch1", "gpu008")
        assert out.returncode == 1
        assert "syncd: nosuch1: not a Slurm node and not a Kubernetes node" in out.stderr
        assert [line.split(":")[0] for line in out.stdout.splitlines()
                if not line.startswith(" ")] == ["gpu007", "gpu008"]
        refused = syncd(stack, "resume", "gpu[007-008]")
        assert refused.returncode == 1 and "syncd: gpu007 was drained by root" in refused.stderr
        assert "ops: fan" in state(stack, "gpu007")
        assert syncd(stack, "why", "gpu[001-").returncode == 2
    finally:
        stack.box.run("scontrol", "update", "NodeName=gpu007", "State=RESUME")


def test_status_in_every_format(stack: Stack) -> None:
    stack.box.run("scontrol", "update", "NodeName=gpu002", "State=DRAIN",
                  "Reason=ops: a reason well over forty characters long, for the wide view")
    try:
        until(lambda: "ops: a reason" in syncd(stack, "status", "-o", "json").stdout, 15,
              "the operator's drain in status")
        data = yaml.safe_load(syncd(stack, "status", "-o", "yaml").stdout)
        assert data["summary"]["nodes"] == NODES
        assert {n["name"] for n in data["nodes"]} == {f"gpu{i:03d}" for i in range(1, 9)}
        assert data.keys() == json.loads(syncd(stack, "status", "-o", "json").stdout).keys()
        table = syncd(stack, "status").stdout
        wide = syncd(stack, "status", "-o", "wide").stdout
        assert table.splitlines()[0].split()[:4] == ["NODE", "KUBERNETES", "GPU", "A/H/U"]
        assert "for the wide view" not in table and "over forty character…" in table
        assert "ops: a reason well over forty characters long, for the wide view" in wide
        _checks_then_summary(table)
    finally:
        stack.box.run("scontrol", "update", "NodeName=gpu002", "State=RESUME")


def test_status_into_head_prints_no_traceback(stack: Stack) -> None:
    out = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m syncd status "
                          "| head -1"], capture_output=True, text=True, env=stack.cli_env,
                         timeout=60, check=False)
    assert out.stdout.split()[:2] == ["NODE", "KUBERNETES"], out
    assert out.stderr == ""
    assert out.returncode in (0, 1, 141)  # 141 when head closed the pipe before the summary
    # A watch keeps writing after head is gone: it must end, quietly, with 141.
    watch = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m syncd status "
                            "--watch --interval 0.1 | head -1"], capture_output=True, text=True,
                           env=stack.cli_env, timeout=60, check=False)
    assert watch.returncode == 141, watch
    assert watch.stderr == ""


def test_watch_has_a_header_with_time_daemon_and_leader(stack: Stack, tmp_path: Path) -> None:
    out_file = tmp_path / "watch.out"
    with open(out_file, "wb") as out:
        p = subprocess.Popen([sys.executable, "-m", "syncd", "status", "-w", "--interval", "0.2"],
                             stdout=out, stderr=subprocess.STDOUT, env=stack.cli_env)
    try:
        until(lambda: out_file.read_bytes().count(b"\x1b[2J") >= 2, 30, "two refreshes")
    finally:
        p.terminate()
        p.wait(timeout=10)
    screen = out_file.read_text().split("\x1b[2J\x1b[H")[1]
    head, _, rest = screen.partition("\n")
    sock = stack.daemon.socket
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d  every 0.2s  daemon unix:{sock} "
                        r"\(stack, leader\)  leader this replica \(leader election off\)",
                        head), head
    _checks_then_summary(rest)


def _checks_then_summary(text: str) -> None:
    """Under the table: one line per health check (``selftest: ok: ...``), then the summary
    line, last, naming the Slurm release and backend."""
    lines = text.strip().splitlines()
    assert lines[-1].startswith(f"{NODES} nodes, "), text
    assert re.search(r"; Slurm \d+\.\d+\.\d+ via scontrol$", lines[-1]), lines[-1]
    at = next(i for i, line in enumerate(lines) if re.match(r"[a-z_]+: (ok|FAILED): ", line))
    assert lines[at:-1] and all(re.match(r"[a-z_]+: (ok|FAILED): ", c) for c in lines[at:-1])


@pytest.mark.slow
def test_the_cli_says_whether_the_daemon_or_slurm_is_unreachable(stack: Stack) -> None:
    gone = dict(stack.cli_env, SYNCD_URL="http://127.0.0.1:9")
    out = subprocess.run([sys.executable, "-m", "syncd", "status"], capture_output=True,
                         text=True, env=gone, timeout=60, check=False)
    assert out.returncode == 3
    assert out.stderr.startswith("syncd: cannot reach the syncd daemon at http://127.0.0.1:9 "
                                 "(Connection refused): is it running?"), out.stderr
    assert out.stderr.count("\n") == 1

    stop_ctld(stack.box)
    try:
        def slurm_down() -> bool:
            return syncd(stack, "status").returncode == 3
        until(slurm_down, 30, "the daemon to notice slurmctld is down")
        for cmd in (["status"], ["plan"], ["why", "gpu001"]):
            out = syncd(stack, *cmd)  # answered (a timeout would say the daemon is unreachable)
            assert out.returncode == 3
            assert out.stderr.startswith(
                f"syncd: the syncd daemon at unix:{stack.daemon.socket} answers, but it cannot "
                "reach Slurm: "), out.stderr
            assert out.stderr.rstrip().endswith("check slurmctld (scontrol ping), SLURM_CONF "
                                                "and munge")
            assert out.stderr.count("\n") == 1
    finally:
        stack.box.ctld_start()
    until(lambda: syncd(stack, "status").returncode in (0, 1), 30, "Slurm back")


def test_completion_node_names_come_from_sinfo(stack: Stack, tmp_path: Path) -> None:
    script = tmp_path / "syncd.bash"
    script.write_text(syncd(stack, "completion", "bash").stdout)
    probe = (f"source {script}; COMP_WORDS=(syncd why gpu00); COMP_CWORD=2; _syncd; "
             "echo ${COMPREPLY[@]}")
    out = subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, text=True,
                         env=dict(os.environ, SLURM_CONF=stack.box.conf), timeout=30, check=True)
    assert out.stdout.split() == [f"gpu{i:03d}" for i in range(1, 9)]


def test_the_clis_own_variables_do_not_break_the_config(stack: Stack, tmp_path: Path) -> None:
    """$SYNCD_TOKEN_FILE is the CLI's, not a config override: the socket is still found."""
    token = tmp_path / "token"
    token.write_text("0123456789abcdef0123\n")
    env = dict(stack.cli_env, SYNCD_TOKEN_FILE=str(token))
    out = subprocess.run([sys.executable, "-m", "syncd", "status", "-o", "json"],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode in (0, 1), out.stderr
    assert json.loads(out.stdout)["summary"]["nodes"] == NODES
