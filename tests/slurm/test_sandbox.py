"""scripts/slurm-sandbox itself, on the release under test: what `stop` kills and spares, one
slurmctld per sandbox, the wrappers in DIR/bin, and slurmrestd with JWT (``--rest``).

Each test starts a sandbox of its own, because these tests stop it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.slurm import SCRIPT, SlurmSandbox, running_sandbox, start_sandbox
from tests.fixtures.waiting import eventually


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def slurmctlds(box: SlurmSandbox) -> list[int]:
    """PIDs of every slurmctld (not its slurmscriptd child) started with this sandbox's conf."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"slurmctld") and box.conf.encode() in argv:
            found.append(int(entry.name))
    return found


@pytest.fixture
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmSandbox]:
    # Short: a job's step socket lives under DIR (scripts/slurm-sandbox refuses a deep DIR).
    with running_sandbox(tmp_path_factory.mktemp("box"), nodes=2) as b:
        yield b


def _read_pid(path: Path) -> int:
    return int(path.read_text().strip())


@pytest.mark.slow
async def test_stop_kills_our_jobs_and_spares_everyone_else(box: SlurmSandbox) -> None:
    d = box.dir
    # Bystanders whose environment names the sandbox: a user's shell with SLURM_CONF exported,
    # a process carrying slurmd.conf (what a hold job's environment shows). Not ours to kill.
    bystanders = [
        await asyncio.create_subprocess_exec("sleep", "600", env=dict(os.environ, SLURM_CONF=conf))
        for conf in (box.conf, str(d / "etc" / "slurmd.conf"))
    ]
    try:
        # A hold job as syncd submits it, a job with a daemonized grandchild (outside
        # slurmstepd's tree), each recording its PIDs in DIR (visible inside a chroot too).
        box.run("sbatch", "-w", box.nodes[0], "--gres=gpu:1", "--output=/dev/null",
                "--chdir=/", "--wrap", f"echo $$ > {d}/hold.pid; exec /bin/sleep infinity")
        box.run("sbatch", "-w", box.nodes[1], "--output=/dev/null", "--chdir=/", "--wrap",
                f"setsid /bin/sleep 600 & echo $! > {d}/orphan.pid; echo $$ > {d}/job.pid; "
                "exec /bin/sleep 600")
        files = [d / "hold.pid", d / "job.pid", d / "orphan.pid"]
        await eventually(lambda: all(f.exists() and f.read_text().strip() for f in files),
                         within=60, what="both jobs running")
        jobs = [_read_pid(f) for f in files]
        assert all(alive(p) for p in jobs)
        daemons = [_read_pid(f) for f in (d / "run").glob("*.pid")]

        # The caller of stop has SLURM_CONF too, and survives it.
        out = (await asyncio.to_thread(
            subprocess.run, ["sh", "-c", f"'{SCRIPT}' stop '{d}' && echo caller-alive"],
            env=dict(box.env, SLURM_CONF=box.conf), capture_output=True, text=True,
            timeout=120, check=True)).stdout
        assert out.strip() == "caller-alive"
        await eventually(lambda: not any(alive(p) for p in jobs + daemons), within=30,
                         what="every job and daemon of the sandbox gone")
        assert all(b.returncode is None and alive(b.pid) for b in bystanders), \
            "stop killed a bystander"
    finally:
        for b in bystanders:
            b.send_signal(signal.SIGKILL)
            await b.wait()


def test_one_slurmctld_whose_pid_is_in_the_pidfile(box: SlurmSandbox) -> None:
    """slurmctld 24.11+ returns before its pidfile exists: start waits for it, so a second
    start never launches a second slurmctld (docs/slurm-releases.md)."""
    pidfile = box.dir / "run" / "slurmctld.pid"
    first = _read_pid(pidfile)
    assert slurmctlds(box) == [first]
    box.script("start", "--nodes", "2")
    assert slurmctlds(box) == [first]
    box.ctld_stop()
    box.ctld_start()
    again = slurmctlds(box)
    assert len(again) == 1 and again != [first]
    assert _read_pid(pidfile) == again[0]


def test_wrappers_run_the_sandbox_release(box: SlurmSandbox) -> None:
    version = box.run("scontrol", "--version").stdout.split()[-1]
    assert version.startswith(f"{box.release}."), version
    slurmd = box.run(str(Path(box.bin_dir) / "slurmd"), "-V").stdout.split()[-1]
    assert slurmd == version
    # The sandbox's slurm.conf is used whatever the caller's SLURM_CONF says.
    elsewhere = subprocess.run([str(Path(box.bin_dir) / "sinfo"), "-h", "-N", "-o", "%N"],
                               env=dict(box.env, SLURM_CONF="/nonexistent/slurm.conf"),
                               capture_output=True, text=True, timeout=60, check=True)
    assert elsewhere.stdout.split() == list(box.nodes)


def test_a_dir_too_deep_for_the_step_sockets_is_refused_in_one_line(tmp_path: Path) -> None:
    """Otherwise slurmd starts, and every job then fails to launch, its step socket path over
    the 108 bytes a Unix socket has."""
    deep = tmp_path / ("d" * 60)
    out = subprocess.run([SCRIPT, "start", str(deep), "--nodes", "2"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode != 0
    assert "DIR is too long" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (deep / "run").exists()


def test_stop_leaves_no_mount_point_behind(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A chroot sandbox makes DIR's mount point inside the shared chroot and removes it again;
    the host's release needs none. Either way nothing of the sandbox stays mounted."""
    box = start_sandbox(tmp_path_factory.mktemp("box"), nodes=1)
    root = (box.dir / "etc" / "shape").read_text().split()[6:]
    made = box.dir / "run" / "mountpoints"
    try:
        if root:
            mount_point = Path(root[0] + str(box.dir))
            assert mount_point.is_dir()
            assert str(mount_point) in made.read_text().split()
        else:
            assert not made.exists()
        holder = _read_pid(box.dir / "run" / "ns.pid")
        assert alive(holder)
    finally:
        box.stop()
    if root:
        assert not mount_point.exists()
    assert not alive(holder)
    assert not (box.dir / "run" / "ns.pid").exists()
    assert str(box.dir) not in Path("/proc/self/mountinfo").read_text()


def _http(url: str, token: str, body: dict[str, object] | None = None) -> dict[str, object]:
    req = urllib.request.Request(
        url, method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-SLURM-USER-NAME": "root", "X-SLURM-USER-TOKEN": token,
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        data: dict[str, object] = json.loads(r.read())
    return data


def test_rest_serves_nodes_and_drains_with_a_jwt(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with running_sandbox(tmp_path_factory.mktemp("rest"), nodes=1, rest=True) as box:
        assert box.rest_url.startswith("http://127.0.0.1:")
        token = box.run("scontrol", "token", "username=root", "lifespan=600").stdout
        jwt = token.strip().removeprefix("SLURM_JWT=")
        # 22.05 serves only v0.0.36-38 and cannot update nodes; 24.11 and 26.05 both serve
        # v0.0.42 with POST (docs/slurm-releases.md, "slurmrestd").
        api = "v0.0.38" if box.release == "22.05" else "v0.0.42"
        nodes = _http(f"{box.rest_url}/slurm/{api}/nodes", jwt)["nodes"]
        assert isinstance(nodes, list) and [n["name"] for n in nodes] == ["gpu001"]
        with pytest.raises(urllib.error.HTTPError) as no_token:
            urllib.request.urlopen(f"{box.rest_url}/slurm/{api}/nodes", timeout=30)
        assert no_token.value.code == 401
        if api == "v0.0.42":
            _http(f"{box.rest_url}/slurm/{api}/node/gpu001", jwt,
                  {"state": ["DRAIN"], "reason": "syncd: over rest"})
            line = box.run("scontrol", "-o", "show", "node", "gpu001").stdout
            assert "State=IDLE+DRAIN" in line and "Reason=syncd: over rest [root@" in line
