"""Fixtures shared by every test; the real-server fixtures live in tests/fixtures/.

Hypothesis explores new examples on a developer's machine but is derandomized under CI, so a
CI run is reproducible: a failure found locally is fixed and kept as a regression example.
"""

import os
import signal
from types import FrameType

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# A run stopped by SIGTERM (`timeout`, CI cancelling a job) ends like Ctrl-C: pytest then runs
# the fixtures' teardown, so no sandbox's slurmctld and slurmd outlive it (they did: seven
# sandboxes of `timeout 300 pytest` runs were found still running).
signal.signal(signal.SIGTERM, _interrupt)

pytest_plugins = [
    "tests.fixtures.slurm",
    "tests.fixtures.kube",
    "tests.fixtures.brokers",
    "tests.fixtures.asuser",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (scripts/test runs the suite on several workers), tests marked slow
    go first, so they spread over the workers instead of one of them ending the run alone
    with a two-minute test. Every worker collects, and must order, the same way."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)
