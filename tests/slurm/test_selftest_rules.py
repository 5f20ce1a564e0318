"""The self-test's pure rules: Slurm's compatibility window and the version check's verdicts
(https://slurm.schedmd.com/upgrades.html, "Compatibility window"). The checks that talk to
slurmctld run on the sandbox in tests/e2e/test_selftest.py."""

from __future__ import annotations

import pytest

from syncd.slurm.selftest import Check, SelfTest, _version, compatible, config_value


@pytest.mark.parametrize(("controller", "window"), [
    ((22, 5), ((22, 5), (21, 8), (20, 11))),
    ((24, 5), ((24, 5), (23, 11), (23, 2))),
    ((24, 11), ((24, 11), (24, 5), (23, 11), (23, 2))),
    ((25, 11), ((25, 11), (25, 5), (24, 11), (24, 5))),
    ((26, 5), ((26, 5), (25, 11), (25, 5), (24, 11))),  # Slinky 1.2/1.3: a 24.11 client works
])
def test_the_window_of_each_release(controller: tuple[int, int],
                                    window: tuple[tuple[int, int], ...]) -> None:
    assert compatible(controller) == window


@pytest.mark.parametrize(("client", "fatal", "words"), [
    ((25, 11), False, "scontrol 25.11 with slurmctld 25.11"),
    ((24, 5), False, "scontrol 24.05 with slurmctld 25.11"),
    ((26, 5), True, "newer than slurmctld"),
    ((23, 11), True, "outside slurmctld's window (25.11, 25.05, 24.11, 24.05)"),
])
def test_version_verdicts(client: tuple[int, int], fatal: bool, words: str) -> None:
    c = _version("client", "scontrol", client, (25, 11))
    assert c.fatal is fatal and c.ok is not fatal and words in c.detail
    if fatal:
        assert "SLURM_VERSION=25.11" in c.fix


def test_unknown_versions_are_a_warning_not_a_stop() -> None:
    c = _version("client", "scontrol", None, (25, 11))
    assert c.ok and not c.fatal


def test_summary_lines() -> None:
    good = SelfTest((Check("rights", True, "accepted"),))
    assert good.summary() == (True, "accepted")
    warn = SelfTest((Check("rights", False, "refused", "run as root", fatal=False),))
    assert warn.summary() == (True, "rights: refused; fix: run as root")
    bad = SelfTest((Check("config", False, "cannot parse", "fix it", fatal=True),))
    assert bad.summary()[0] is False and bad.failures
    assert SelfTest((), unreachable="x").summary() == (False, "waiting for slurmctld: x")


def test_config_value_reads_show_config_lines() -> None:
    text = "SlurmUser               = slurm(401)\nSLURM_VERSION           = 26.05.0\n"
    assert config_value(text, "SlurmUser") == "slurm(401)"
    assert config_value(text, "SLURM_VERSION") == "26.05.0"
    assert config_value(text, "MetricsType") == ""
