"""An operator's drain made with plain scontrol is never resumed by syncd (planner + real port)."""

from __future__ import annotations

from syncd.core.model import ActionKind
from syncd.core.ownership import make_reason
from syncd.slurm.scontrol import ScontrolPort
from tests.fixtures.slurm import SlurmSandbox
from tests.fixtures.waiting import eventually
from tests.slurm.kit import kube, policy_for, read_when, reconcile


async def test_operator_drain_is_never_resumed(slurm: SlurmSandbox) -> None:
    n = slurm.nodes[2]
    port = ScontrolPort(slurm.settings())
    policy = policy_for(n)
    operator_reason = "disk = dying, ticket INC-42; syncd: not ours"
    slurm.run("scontrol", "update", f"NodeName={n}", "State=DRAIN", f"Reason={operator_reason}")
    try:
        p = await reconcile(port, kube({n: 0}), policy)
        memory = p.memory
        for _ in range(3):  # several ticks: resume_after is 0, so a resume would come at once
            p = await reconcile(port, kube({n: 0}), policy, memory)
            memory = p.memory
            assert ActionKind.RESUME not in {a.kind for a in p.actions}
        view = await port.read()
        assert view.nodes[n].drained
        assert view.nodes[n].reason == operator_reason
        assert port.runner.calls["update"] <= 1  # at most the features write, never a resume

        # Control: the same node drained with syncd's own reason IS resumed by the same loop,
        # so the test above would notice a planner or port that ignored ownership.
        ours = make_reason(policy, n, "k8s node cordoned")
        slurm.run("scontrol", "update", f"NodeName={n}", "State=DRAIN", f"Reason={ours}")
        p = await reconcile(port, kube({n: 0}), policy, memory)
        p = await reconcile(port, kube({n: 0}), policy, p.memory)
        await eventually(read_when(port, lambda v: not v.nodes[n].drained),
                         what="syncd's own drain resumed")
    finally:
        slurm.run("scontrol", "update", f"NodeName={n}", "State=RESUME", check=False)
