"""The real kubectl against the simulator (HTTPS: kubectl sends no bearer token over HTTP)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from kubesim.client import SimClient
from kubesim.server import SimServer
from tests.fixtures.kube import ADMIN_TOKEN, eventually
from tests.fixtures.tools import missing


@pytest.fixture(autouse=True)
def _kubectl_installed() -> None:
    if shutil.which("kubectl") is None:
        missing("kubectl", "see scripts/bootstrap")


async def kubectl(kubeconfig: Path, *args: str, limit: float = 30) -> tuple[int, str, str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    proc = await asyncio.create_subprocess_exec(
        "kubectl", *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), limit)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def cluster(sim_tls: tuple[SimServer, Path]) -> tuple[SimServer, Path, SimClient]:
    server, kubeconfig = sim_tls
    client = SimClient(server.url, ADMIN_TOKEN, ca_file=server.cert)
    await client.pool(3)
    await client.start_pods([{"name": "train", "node": "gpu002", "namespace": "ml"}])
    return server, kubeconfig, client


async def test_get_nodes_wide_and_pods_all_namespaces(
    cluster: tuple[SimServer, Path, SimClient]
) -> None:
    _, kubeconfig, client = cluster
    try:
        await client.set_ready("gpu003", False)
        rc, out, err = await kubectl(kubeconfig, "get", "nodes", "-o", "wide")
        assert rc == 0, err
        rows = [line.split() for line in out.splitlines()]
        assert rows[0][:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        assert "INTERNAL-IP" in rows[0]
        assert "CONTAINER-RUNTIME" in rows[0]
        assert [r[:2] for r in rows[1:]] == [["gpu001", "Ready"], ["gpu002", "Ready"],
                                             ["gpu003", "NotReady"]]
        rc, out, err = await kubectl(kubeconfig, "get", "pods", "-A")
        assert rc == 0, err
        assert out.splitlines()[1].split()[:4] == ["ml", "train", "1/1", "Running"]
    finally:
        await client.close()


async def test_cordon_uncordon_label(cluster: tuple[SimServer, Path, SimClient]) -> None:
    server, kubeconfig, client = cluster
    try:
        def node(name: str) -> dict[str, object]:
            obj = server.sim.store.get("nodes", ("", name))
            assert obj is not None
            return obj.data
        rc, out, err = await kubectl(kubeconfig, "cordon", "gpu001")
        assert rc == 0, err
        assert "cordoned" in out
        assert node("gpu001")["spec"] == {"unschedulable": True}
        rc, out, err = await kubectl(kubeconfig, "uncordon", "gpu001")
        assert rc == 0, err
        assert "uncordoned" in out
        assert node("gpu001")["spec"] == {}
        rc, out, err = await kubectl(kubeconfig, "label", "node", "gpu002", "slurm/name=gpu2")
        assert rc == 0, err
        assert "labeled" in out
        labels = node("gpu002")["metadata"]
        assert isinstance(labels, dict)
        assert labels["labels"]["slurm/name"] == "gpu2"
        # kubectl names itself as the field manager; the cluster's own writers stay
        rc, out, err = await kubectl(kubeconfig, "get", "node", "gpu002", "-o", "json",
                                     "--show-managed-fields")
        assert rc == 0, err
        owners = {e["manager"]: e["fieldsV1"] for e in json.loads(out)["metadata"][
            "managedFields"]}
        assert owners["kubectl-label"] == {"f:metadata": {"f:labels": {"f:slurm/name": {}}}}
        assert "kubelet" in owners
        rc, out, err = await kubectl(kubeconfig, "get", "node", "gpu002", "-o", "json")
        assert rc == 0, err
        assert "managedFields" not in json.loads(out)["metadata"], "hidden by default"
    finally:
        await client.close()


async def test_impersonation_denied(cluster: tuple[SimServer, Path, SimClient]) -> None:
    _, kubeconfig, client = cluster
    try:
        rc, out, err = await kubectl(kubeconfig, "--as", "nobody", "get", "nodes")
        assert rc != 0
        assert ('Error from server (Forbidden): nodes is forbidden: User "nobody" cannot list '
                'resource "nodes" in API group "" at the cluster scope') in err
        rc, out, err = await kubectl(kubeconfig, "--as", "nobody", "--as-group",
                                     "system:masters", "get", "nodes")
        assert rc == 0, err
        assert "gpu001" in out
    finally:
        await client.close()


async def test_get_nodes_watch(cluster: tuple[SimServer, Path, SimClient]) -> None:
    server, kubeconfig, client = cluster
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "get", "nodes", "--watch", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        lines: list[str] = []

        async def read_until(text: str) -> None:
            while not any(text in line for line in lines):
                line = await asyncio.wait_for(proc.stdout.readline(), 10)  # type: ignore[union-attr]
                assert line, "kubectl ended early"
                lines.append(line.decode())
        await read_until("gpu003")
        await eventually(lambda: len(server.sim.store.watchers) >= 1, what="kubectl watching")
        await client.cordon("gpu003")
        await read_until("SchedulingDisabled")
        assert lines[-1].split()[:2] == ["gpu003", "Ready,SchedulingDisabled"]
    finally:
        proc.terminate()
        await proc.wait()
        await client.close()
