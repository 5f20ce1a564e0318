"""slurmctld restarts and outages against the real daemon: typed errors, no crash, recovery.

These tests stop the session's slurmctld and always start it again before they return.
"""

from __future__ import annotations

import time

import pytest

from syncd.core.model import Action, ActionKind, EventType
from syncd.slurm.errors import Unreachable
from syncd.slurm.scontrol import ScontrolPort
from tests.fixtures.slurm import SlurmSandbox
from tests.fixtures.waiting import eventually_sync
from tests.slurm.kit import kube, policy_for, reconcile


async def test_restart_resets_features_and_next_plan_reapplies(slurm: SlurmSandbox) -> None:
    n = slurm.nodes[3]
    port = ScontrolPort(slurm.settings())
    policy = policy_for(n)
    first = await reconcile(port, kube({n: 2}), policy)
    before = await port.read()
    assert "gpu_avail_6" in before.nodes[n].active_features

    slurm.ctld_stop()
    try:
        # BOOT_TIME has one-second resolution: start in a later second than the last boot.
        eventually_sync(lambda: time.strftime("%Y-%m-%dT%H:%M:%S") > before.boot_time,
                        what="a new second")
    finally:
        slurm.ctld_start()
    after = await port.read()
    assert after.boot_time != before.boot_time
    # Default recovery resets scontrol-set features to slurm.conf (docs/facts/slurm.md §3).
    assert after.nodes[n].active_features == ("gpu",)
    assert after.nodes[n].hold_gpus == 2  # jobs survive a restart

    second = await reconcile(port, kube({n: 2}), policy, first.memory)
    assert [a.kind for a in second.actions] == [ActionKind.SET_FEATURES]
    assert any(e.type is EventType.DRIFT and e.subject == "" for e in second.events)
    fixed = await port.read()
    assert "gpu_avail_6" in fixed.nodes[n].active_features
    await reconcile(port, kube({n: 0}), policy, second.memory)


@pytest.mark.slow
async def test_stopped_slurmctld_gives_unreachable_then_recovers(slurm: SlurmSandbox) -> None:
    n = slurm.nodes[3]
    port = ScontrolPort(slurm.settings(retries=1))
    slurm.ctld_stop()
    try:
        with pytest.raises(Unreachable):
            await port.read()
        with pytest.raises(Unreachable):
            await port.apply(Action(ActionKind.DRAIN, n, (n,), reason="syncd: test"))
        # Retried once: transient errors are retried, then surface as the typed error.
        assert port.runner.calls["update"] == 2
    finally:
        slurm.ctld_start()
    view = await port.read()
    assert n in view.nodes
    assert not view.nodes[n].drained
