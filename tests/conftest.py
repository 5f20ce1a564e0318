"""Fixtures shared by every test; the real-server fixtures live in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.slurm",
    "tests.fixtures.kube",
    "tests.fixtures.brokers",
]
