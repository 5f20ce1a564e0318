"""Allow-lists for text that can reach a Slurm command."""

from __future__ import annotations

import pytest

from syncd.core.validate import clean_reason_text, is_feature, is_node_name, is_reason

HOSTILE = [
    "",
    "gpu1 State=DOWN",
    "gpu1,gpu2",
    "gpu[1-9]",
    "gpu1\nState=DOWN",
    "gpu1;reboot",
    "gpu1=x",
    "-gpu1",
    "gpu1 ",
    "x" * 10_000,
    "gpü1",
    "gpu1\x00",
    "$(reboot)",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_node_names_and_features_are_refused(value: str) -> None:
    assert not is_node_name(value)
    assert not is_feature(value)


@pytest.mark.parametrize("value", ["gpu001", "node-1.rack2", "a", "A_b-c.d"])
def test_ordinary_names_pass(value: str) -> None:
    assert is_node_name(value)


@pytest.mark.parametrize("value", ["gpu_avail_8", "k8s.gpus-4", "_x"])
def test_ordinary_features_pass(value: str) -> None:
    assert is_feature(value)


@pytest.mark.parametrize(
    "value", ["x\ny", "a;b", "State=DOWN", "quote'", 'dq"', "x" * 201, " lead", "tail ", "tab\t"]
)
def test_hostile_reasons_are_refused(value: str) -> None:
    assert not is_reason(value)


def test_reason_text_from_kubernetes_is_cleaned_not_trusted() -> None:
    cleaned = clean_reason_text("example.com/x;rm -rf\n=1")
    assert is_reason(f"syncd: k8s taint {cleaned}")
    assert ";" not in cleaned and "\n" not in cleaned and "=" not in cleaned
