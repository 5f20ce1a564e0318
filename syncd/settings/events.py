"""Settings of the event outbox and its sinks (Redis Streams, MQTT)."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.core.policy import Seconds

#: What the outbox does while its spool cannot be written (see EventsSettings).
SPOOL_FAILURE_ACTIONS = ("continue", "hold")


@dataclass(frozen=True, slots=True)
class RedisSink:
    enabled: bool = True
    url: str = "redis://127.0.0.1:6379/0"
    stream: str = "syncd:events"
    maxlen: int = 100000
    publish_channel: str = ""
    #: Connect and per-command timeout; a broker that hangs fails the batch after this long.
    timeout: Seconds = 5.0

    def problems(self) -> list[str]:
        out: list[str] = []
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            out.append("redis.url: must start with redis://, rediss:// or unix://")
        if self.maxlen < 1:
            out.append("redis.maxlen: must be 1 or more")
        if self.timeout <= 0:
            out.append("redis.timeout: must be above 0")
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
    #: Client certificate and key for mutual TLS (only with ``tls``).
    cert_file: str = ""
    key_file: str = ""
    #: How long a QoS 1 publish may wait for the broker's PUBACK before the batch is retried.
    timeout: Seconds = 10.0
    keepalive: int = 30
    #: ``events``: one message per event on ``<prefix>/events`` (CloudEvents structured mode);
    #: ``batches``: one message per delivery batch on ``<prefix>/batches``, a JSON array of
    #: the same events (CloudEvents JSON batch format), at most ``batch_bytes`` each.
    stream: str = "events"
    batch_bytes: int = 131072

    def problems(self) -> list[str]:
        out: list[str] = []
        if not 0 < self.port < 65536:
            out.append("mqtt.port: must be between 1 and 65535")
        if self.stream not in ("events", "batches"):
            out.append("mqtt.stream: must be events or batches")
        if self.batch_bytes < 1024:
            out.append("mqtt.batch_bytes: must be 1024 or more")
        if any(c in self.topic_prefix for c in "+#\0") or not self.topic_prefix:
            out.append("mqtt.topic_prefix: must be non-empty without + # or NUL")
        if self.timeout <= 0:
            out.append("mqtt.timeout: must be above 0")
        if self.keepalive < 5:
            out.append("mqtt.keepalive: must be 5 or more")
        return out


@dataclass(frozen=True, slots=True)
class EventsSettings:
    """``spool_dir`` empty means ``<daemon.state_dir>/spool``.

    ``fsync`` (docs/events.md has the details): ``batch`` fsyncs once per spool transaction
    (which holds every event ``publish()`` queued since the last), so what ``durable()``
    waited for survives a power loss; ``always`` fsyncs after every event; ``off`` never
    fsyncs: events survive a crash of syncd but not of the host.
    ``batch_size`` caps the events sent to a sink per round trip; ``retry_max`` caps the
    exponential back-off between reconnect attempts to a sink that is down, and between
    attempts to write a spool that failed.

    ``on_spool_failure`` says what happens while the spool cannot be written (disk full, I/O
    error, read-only), like auditd's ``disk_full_action``: ``continue`` keeps up to
    ``memory_buffer`` events in memory (the newest beyond it are dropped and announced by an
    overflow event; the bound applies only while the spool fails) and Slurm writes go on;
    ``hold`` buffers the same way but ``writes_allowed()`` is False, so the engine holds its
    Slurm writes until the spool works.
    """

    spool_dir: str = ""
    spool_max_events: int = 100000
    spool_max_age: Seconds = 86400.0
    fsync: str = "batch"
    batch_size: int = 500
    retry_max: Seconds = 5.0
    on_spool_failure: str = "continue"
    memory_buffer: int = 10000
    redis: RedisSink = field(default_factory=RedisSink)
    mqtt: MqttSink = field(default_factory=MqttSink)

    def problems(self) -> list[str]:
        out = [*self.redis.problems(), *self.mqtt.problems()]
        if self.spool_max_events < 1:
            out.append("spool_max_events: must be 1 or more")
        if self.fsync not in ("batch", "always", "off"):
            out.append("fsync: must be one of batch, always, off")
        if self.spool_max_age <= 0:
            out.append("spool_max_age: must be above 0")
        if self.batch_size < 1:
            out.append("batch_size: must be 1 or more")
        if self.retry_max <= 0:
            out.append("retry_max: must be above 0")
        if self.on_spool_failure not in SPOOL_FAILURE_ACTIONS:
            out.append("on_spool_failure: must be one of " + ", ".join(SPOOL_FAILURE_ACTIONS))
        if self.memory_buffer < 1:
            out.append("memory_buffer: must be 1 or more")
        return out
