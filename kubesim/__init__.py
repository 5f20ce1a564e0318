"""kubesim: a Kubernetes API server simulator that speaks the real REST protocol.

It is test infrastructure, kept beside syncd the way kopf keeps kmock: it is not in syncd's
wheel or image, it imports nothing from syncd and syncd imports nothing from it (import-linter
contracts in pyproject.toml), so a bug shared by client and server cannot hide. Tests, the demo
and the benchmarks start it with :class:`kubesim.server.SimServer` (in-process) or
``python -m kubesim`` (its own process) and drive it with :class:`kubesim.client.SimClient`.
How it matches a real kube-apiserver, and where it does not: docs/kubesim.md.
"""
