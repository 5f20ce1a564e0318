"""A Kubernetes API simulator that speaks the real REST protocol (test infrastructure).

syncd itself never imports this package (an import-linter contract); tests, the demo and the
benchmark start it with :class:`syncd.sim.server.SimServer` or ``python -m syncd.sim`` and drive
it with :class:`syncd.sim.client.SimClient`.
"""
