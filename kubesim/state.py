"""The simulator's configuration and shared state (one per aiohttp application)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from kubesim.store import Store


@dataclass(slots=True)
class SimConfig:
    """Knobs of one simulator; the scenario API can change ``latency`` and the bookmark pace."""

    token: str = "sim-admin-token"  # noqa: S105 - a test server's well-known default
    readonly_token: str = ""
    admin_user: str = "kubesim-admin"  # the admin token's user (in system:masters)
    readonly_user: str = "readonly"  # the read-only token's user
    anonymous: bool = True  # a missing token is 403 as system:anonymous (70), else 401 (70b)
    latency: float = 0.0
    too_large_wait: float = 3.0  # how long a too-new resourceVersion is waited for (48)
    bookmark_interval: float = 60.0
    history: int = 200_000
    watch_timeout: float = 1800.0  # when the client sends no timeoutSeconds
    server_address: str = "127.0.0.1:6443"
    state_file: str = ""  # etcd's part: objects and revision kept across restarts (persist.py)


@dataclass(slots=True)
class Counters:
    requests: int = 0
    watches_opened: int = 0
    watch_events: int = 0
    by_verb: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Sim:
    config: SimConfig
    store: Store
    counters: Counters = field(default_factory=Counters)
    generation: int = 0  # bumped on reset, so scenario helpers can tell restarts apart


SIM_KEY: web.AppKey[Sim] = web.AppKey("sim", Sim)


def new_sim(config: SimConfig) -> Sim:
    return Sim(config=config, store=Store(history=config.history))
