"""The SlurmPort contract, one suite for every backend, run against the real slurmctld.

The scontrol backend runs for real, on every release the session picks (``SYNCD_TEST_SLURM``:
22.05, 24.11 or 26.05; scripts/test runs all three), and so does the rest backend against the
sandbox's real slurmrestd on 24.11 and 26.05 (22.05's serves v0.0.38 only, without node updates).
pyslurm 25.11 builds only against Slurm 25.11, which no Debian suite ships: its parameter is
collected only when asked for (``--backends pyslurm``, which ``scripts/test-pyslurm`` passes with
a running Slurm 25.11: docs/slurm-backends.md), and then a pyslurm that cannot run fails. No
parameter is ever a skip, and nothing is ever replaced by a fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from syncd.core.model import Action, ActionKind, BaseState
from syncd.slurm.errors import InvalidState, Refused, SlurmError, UnknownNode
from syncd.slurm.parse import parse_gpus, split_fields
from syncd.slurm.pyslurm_backend import PyslurmPort
from syncd.slurm.rest_backend import RestPort, make_rest_port
from syncd.slurm.runner import make_runner
from syncd.slurm.scontrol import ScontrolPort
from syncd.slurm.select import PyslurmCheck, check_pyslurm, make_slurm_port
from tests.fixtures.slurm import SlurmSandbox, submit
from tests.fixtures.waiting import eventually
from tests.slurm.kit import kube, policy_for, read_when, reconcile

Port = ScontrolPort | PyslurmPort | RestPort


async def _make(backend: str, slurm: SlurmSandbox) -> Port:
    if backend == "rest":
        return await make_rest_port(slurm.rest_settings())
    if backend == "scontrol-json":
        port = await make_slurm_port(slurm.settings(backend="scontrol", read_format="json"))
        assert isinstance(port, ScontrolPort) and port.read_format == "json"
        return port
    settings = slurm.settings(backend=backend)
    if backend == "pyslurm":
        found = await check_pyslurm(settings)
        if not found.usable:
            # Only collected when asked for (scripts/test-pyslurm): then unusable is a failure.
            pytest.fail(pyslurm_unusable(found, slurm.release), pytrace=False)
    port = await make_slurm_port(settings)
    assert isinstance(port, ScontrolPort | PyslurmPort)
    return port


def pyslurm_unusable(found: PyslurmCheck, release: str) -> str:
    return (f"pyslurm backend not usable: {found.why}; pyslurm 25.11 needs Slurm 25.11 and "
            f"this Slurm is {release} (docs/slurm-backends.md, \"pyslurm\")")


@pytest.fixture
async def port(request: pytest.FixtureRequest, slurm: SlurmSandbox) -> AsyncIterator[Port]:
    """One backend per parameter, from tests/fixtures/slurm.py ``contract_backends``: only
    backends that can run are collected (pyslurm only through scripts/test-pyslurm)."""
    made = await _make(request.param, slurm)
    yield made
    await made.close()


def _executions(port: Port) -> int:
    """Every command run and every RPC or HTTP request made through the port."""
    if isinstance(port, RestPort):
        return port.client.executions
    rpcs = sum(port.calls.values()) if isinstance(port, PyslurmPort) else 0
    return port.runner.executions + rpcs


def _writes(port: Port) -> dict[str, int]:
    if isinstance(port, RestPort):
        return {k: port.client.calls[k] for k in ("update", "submit", "cancel")}
    counts = {k: port.runner.calls[k] for k in ("update", "sbatch", "scancel")}
    if isinstance(port, PyslurmPort):
        counts["modify"] = port.calls["modify"]
    return counts


def _drain(node: str, reason: str) -> Action:
    return Action(ActionKind.DRAIN, node, (node,), reason=reason)


def _resume(node: str) -> Action:
    return Action(ActionKind.RESUME, node, (node,))


async def test_read_every_node(port: Port, slurm: SlurmSandbox) -> None:
    view = await port.read()
    assert set(slurm.nodes) <= set(view.nodes)
    assert view.boot_time
    for name in slurm.nodes:
        fields = split_fields(slurm.node_line(name).strip())
        assert view.nodes[name].gres_gpus == parse_gpus(fields["Gres"]) > 0
        assert view.nodes[name].available_features == tuple(
            fields["AvailableFeatures"].split(","))
    # The port names the Slurm it talks to (syncd status, /readyz, syncd_slurm_info).
    assert port.slurm_version.startswith(f"{slurm.release}.")


async def test_set_features_on_one_node(port: Port, slurm: SlurmSandbox) -> None:
    n = slurm.nodes[0]
    feats = ("gpu", "gpu_avail_5", "rack_b")
    await port.apply(Action(ActionKind.SET_FEATURES, n, (n,), features=feats))
    view = await port.read()
    assert set(view.nodes[n].available_features) == set(feats)
    assert set(view.nodes[n].active_features) == set(feats)
    assert f"AvailableFeatures={','.join(feats)}" in slurm.node_line(n)
    await port.apply(Action(ActionKind.SET_FEATURES, n, (n,), features=("gpu",)))


async def test_drain_resume_undrain(port: Port, slurm: SlurmSandbox) -> None:
    n = slurm.nodes[1]
    reason = "syncd: k8s node cordoned #0badc0de"
    await port.apply(_drain(n, reason))
    view = await port.read()
    assert view.nodes[n].drained
    assert view.nodes[n].reason == reason
    assert view.nodes[n].reason_user == "root"

    await port.apply(_resume(n))
    # After RESUME the node reads IDLE+NOT_RESPONDING until slurmctld pings it again, and 24.11
    # keeps the reason, which the port does not report (docs/slurm-releases.md).
    view = await eventually(read_when(port, lambda v: v.nodes[n].state is BaseState.IDLE
                                      and not v.nodes[n].flags), what=f"{n} IDLE after resume")
    assert view.nodes[n].reason == ""

    await port.apply(_drain(n, reason))
    slurm.run("scontrol", "update", f"NodeName={n}", "State=UNDRAIN")
    view = await eventually(read_when(port, lambda v: not v.nodes[n].drained),
                            what=f"{n} undrained")
    assert view.nodes[n].reason == ""


async def test_the_confirming_read_agrees_with_the_full_read(port: Port,
                                                             slurm: SlurmSandbox) -> None:
    """``read_marks`` (the single-node read that confirms a state write, docs/hot-path.md)
    reads state, flags and reason exactly as ``read`` does, in service, drained by syncd,
    drained by an operator with free text, and down; an unknown node is absent."""
    n, m = slurm.nodes[1], slurm.nodes[2]

    async def agreeing() -> bool:
        view, marks = await port.read(), await port.read_marks([n, m, "nosuch001"])
        return "nosuch001" not in marks and all(marks[x].agrees(view.nodes[x]) for x in (n, m))

    await eventually(agreeing, what="in service")
    await port.apply(_drain(n, "syncd: k8s node cordoned #0badc0de"))
    slurm.run("scontrol", "update", f"NodeName={m}", "State=DRAIN",
              "Reason=rma | ticket=4711 none [x]")
    await eventually(agreeing, what="drained by syncd and by an operator")
    assert (await port.read_marks([m]))[m].reason == "rma | ticket=4711 none [x]"
    slurm.run("scontrol", "update", f"NodeName={m}", "State=DOWN", "Reason=dead psu")
    await eventually(agreeing, what="down")
    for x in (n, m):
        slurm.run("scontrol", "update", f"NodeName={x}", "State=RESUME", check=False)
    await eventually(agreeing, what="resumed")


async def test_a_partial_read_agrees_with_the_full_read(port: Port,
                                                       slurm: SlurmSandbox) -> None:
    """``read_nodes`` (the verify read after a write; single-node ``sinfo`` reads on the
    scontrol backend) reads every field as ``read`` does: a running GPU job, features set
    and cleared, an operator's drain with free text, down. An unknown node is never made up:
    it is absent, or the call fails and the reader reads everything."""
    busy, feats, drained, down = slurm.nodes[3], slurm.nodes[4], slurm.nodes[5], slurm.nodes[6]
    names = [busy, feats, drained, down]
    job = submit(slurm, ["-w", busy, "--gres=gpu:2", "--cpus-per-task=1", "--mem=1",
                         "--output=/dev/null", "--chdir=/", "--wrap", "sleep 300"])
    try:
        await port.apply(Action(ActionKind.SET_FEATURES, feats, (feats,),
                                features=("gpu", "gpu_avail_5")))
        slurm.run("scontrol", "update", f"NodeName={drained}", "State=DRAIN",
                  "Reason=rma | ticket=4711 none [x]")
        slurm.run("scontrol", "update", f"NodeName={down}", "State=DOWN", "Reason=dead psu")

        async def agreeing() -> bool:
            view, part = await port.read(), await port.read_nodes(names)
            return (view.nodes[busy].gres_used_gpus == 2
                    and {n: part.get(n) for n in names} == {n: view.nodes[n] for n in names})

        await eventually(agreeing, what="a running job, features, drained, down")
        await port.apply(Action(ActionKind.SET_FEATURES, feats, (feats,), features=()))
        await eventually(agreeing, what="features cleared")
    finally:
        slurm.run("scancel", job, check=False)
        await port.apply(Action(ActionKind.SET_FEATURES, feats, (feats,), features=("gpu",)))
        for x in (drained, down):
            slurm.run("scontrol", "update", f"NodeName={x}", "State=RESUME", check=False)
    try:
        part = await port.read_nodes([busy, "nosuch001"])
    except SlurmError:
        pass  # the scontrol text read fails the call; the reader then reads everything
    else:
        assert "nosuch001" not in part and busy in part


async def test_resume_of_a_node_that_is_not_drained(port: Port, slurm: SlurmSandbox) -> None:
    with pytest.raises(InvalidState):
        await port.apply(_resume(slurm.nodes[1]))


async def test_unknown_node(port: Port) -> None:
    with pytest.raises(UnknownNode):
        await port.apply(_drain("nosuch001", "syncd: test"))
    with pytest.raises(UnknownNode):
        await port.apply(Action(ActionKind.SET_FEATURES, "nosuch001", ("nosuch001",),
                                features=("gpu",)))


HOSTILE_TEXT = [
    "gpu001 State=DOWN", "gpu001;reboot", "gpu001\nState=DOWN", "a=b", "x" * 10240,
    "$(reboot)", "gpu[001-008]", "", " gpu001", "gpu001,gpu002", "-h",
]


@pytest.mark.parametrize("bad", HOSTILE_TEXT)
async def test_hostile_input_never_reaches_slurm(port: Port, slurm: SlurmSandbox, bad: str) -> None:
    good = slurm.nodes[0]
    fresh: Port
    if isinstance(port, RestPort):
        fresh = RestPort(port.settings, port.client)
        port.client.calls.clear()
    elif isinstance(port, ScontrolPort):
        fresh = ScontrolPort(port.settings, runner=make_runner(port.settings))
    else:
        fresh = PyslurmPort(port.settings, port._ps, runner=make_runner(port.settings))
    hostile = [
        Action(ActionKind.DRAIN, bad, (bad,), reason="syncd: test"),
        Action(ActionKind.DRAIN, good, (good, bad), reason="syncd: test"),
        Action(ActionKind.RESUME, bad, (bad,)),
        Action(ActionKind.SET_HOLD, bad, (bad,), hold_gpus=1),
        Action(ActionKind.SET_FEATURES, good, (good,), features=("gpu", bad)),
        Action(ActionKind.DRAIN, good, (good,), reason=f"syncd: {bad};"),
    ]
    if any(c in bad for c in "=;\n$") or len(bad) > 200 or not bad.strip():
        hostile.append(Action(ActionKind.DRAIN, good, (good,), reason=bad))
    for action in hostile:
        with pytest.raises(Refused):
            await fresh.apply(action)
    # Nothing was executed at the exec seam, and no RPC or HTTP request was made.
    assert _executions(fresh) == 0
    # Positive control: the same seam does record a legitimate command.
    await fresh.apply(Action(ActionKind.SET_FEATURES, good, (good,), features=("gpu",)))
    assert _executions(fresh) == 1


async def test_planning_again_after_apply_writes_nothing(port: Port, slurm: SlurmSandbox) -> None:
    n = slurm.nodes[4]
    k8s = kube({n: 3})
    policy = policy_for(n)
    first = await reconcile(port, k8s, policy)
    assert {a.kind for a in first.actions} == {ActionKind.SET_FEATURES, ActionKind.SET_HOLD}
    before = _writes(port)
    second = await reconcile(port, k8s, policy, first.memory)
    assert second.actions == ()
    assert _writes(port) == before
    view = await port.read()
    assert view.nodes[n].hold_gpus == 3
    assert "gpu_avail_5" in view.nodes[n].active_features
    await reconcile(port, kube({n: 0}), policy, second.memory)
    assert (await port.read()).nodes[n].hold_gpus == 0


async def test_unchanged_nodes_read_as_equal_and_the_same_objects(port: Port) -> None:
    """The port's reuse contract (syncd/core/ports.py), which the planner's settled cache
    relies on: equal objects for unchanged nodes, and the same objects."""
    first = await port.read()
    second = await port.read()
    part = await port.read_nodes(sorted(first.nodes)[:2])
    # a node may change state between the reads (a slurmd ping), so one may differ
    equal = [n for n in first.nodes if second.nodes[n] == first.nodes[n]]
    same = [n for n in first.nodes if second.nodes[n] is first.nodes[n]]
    assert len(equal) >= len(first.nodes) - 1 and len(same) == len(equal)
    assert all(part[n] == second.nodes[n] for n in part)
