"""Settings of the event outbox and its sinks (Redis Streams, MQTT)."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.core.policy import Seconds


@dataclass(frozen=True, slots=True)
class RedisSink:
    enabled: bool = True
    url: str = "redis://127.0.0.1:6379/0"
    stream: str = "syncd:events"
    maxlen: int = 100000
    publish_channel: str = ""

    def problems(self) -> list[str]:
        out: list[str] = []
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            out.append("redis.url: must start with redis://, rediss:// or unix://")
        if self.maxlen < 1:
            out.append("redis.maxlen: must be 1 or more")
        return out


@dataclass(frozen=True, slots=True)
class MqttSink:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: str = ""
    username: str = ""
    password: str = ""
    topic_prefix: str = "syncd"
    client_id: str = ""

    def problems(self) -> list[str]:
        out: list[str] = []
        if not 0 < self.port < 65536:
            out.append("mqtt.port: must be between 1 and 65535")
        if any(c in self.topic_prefix for c in "+#\0") or not self.topic_prefix:
            out.append("mqtt.topic_prefix: must be non-empty without + # or NUL")
        return out


@dataclass(frozen=True, slots=True)
class EventsSettings:
    """``spool_dir`` empty means ``<daemon.state_dir>/spool``. ``fsync``: ``batch`` (one fsync
    per written batch), ``always`` (per event) or ``off`` (leave it to the OS)."""

    spool_dir: str = ""
    spool_max_events: int = 100000
    spool_max_age: Seconds = Seconds(86400.0)
    fsync: str = "batch"
    redis: RedisSink = field(default_factory=RedisSink)
    mqtt: MqttSink = field(default_factory=MqttSink)

    def problems(self) -> list[str]:
        out = [*self.redis.problems(), *self.mqtt.problems()]
        if self.spool_max_events < 1:
            out.append("spool_max_events: must be 1 or more")
        if self.fsync not in ("batch", "always", "off"):
            out.append("fsync: must be one of batch, always, off")
        return out
