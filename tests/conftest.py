"""Fixtures shared by every test; the real-server fixtures live in tests/fixtures/.

Hypothesis explores new examples on a developer's machine but is derandomized under CI, so a
CI run is reproducible: a failure found locally is fixed and kept as a regression example.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

pytest_plugins = [
    "tests.fixtures.slurm",
    "tests.fixtures.kube",
    "tests.fixtures.brokers",
    "tests.fixtures.asuser",
]
