"""The one place where syncd executes Slurm commands: the exec seam.

Every command goes through :meth:`Runner.run` as an argv list to
``asyncio.create_subprocess_exec`` (never a shell), under a per-call timeout and the shared
token bucket, and is counted per kind. Tests read :attr:`Runner.calls` and :attr:`Runner.history`
to prove what did or did not reach Slurm; nothing here is replaced in tests.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter, deque
from collections.abc import Mapping, Sequence

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from syncd.settings.slurm import SlurmSettings
from syncd.slurm.errors import SlurmError, Timeout, Unreachable, from_text
from syncd.slurm.throttle import TokenBucket


def _connect_failure(exc: BaseException) -> bool:
    # "Unable to contact slurm controller (connect failure)": the request never left us,
    # so even a non-idempotent command (sbatch) is safe to send again.
    return isinstance(exc, Unreachable)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, SlurmError) and exc.transient


class Runner:
    """Runs Slurm CLI commands with a timeout, a rate limit and retries for transient errors."""

    def __init__(
        self,
        *,
        bin_dir: str = "",
        conf: str = "",
        timeout: float = 10.0,
        bucket: TokenBucket | None = None,
        retries: int = 3,
        retry_wait: float = 0.5,
        history: int = 2000,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._bin_dir = bin_dir
        self._timeout = timeout
        self._bucket = bucket
        self._retries = retries
        self._retry_wait = retry_wait
        base = dict(os.environ if env is None else env)
        if conf:
            base["SLURM_CONF"] = conf
        self._env = base
        #: Executions per kind (``show_node``, ``update``, ``sbatch``...), retries included.
        self.calls: Counter[str] = Counter()
        #: The most recent argv lists, oldest first.
        self.history: deque[tuple[str, ...]] = deque(maxlen=history)

    @property
    def executions(self) -> int:
        return sum(self.calls.values())

    def _exe(self, name: str) -> str:
        return os.path.join(self._bin_dir, name) if self._bin_dir else name

    async def run(self, kind: str, argv: Sequence[str], *, idempotent: bool = True) -> str:
        """stdout of the command; raises a typed SlurmError.

        Idempotent commands are retried on every transient error; others (sbatch) only when
        the controller was never reached, since a timed-out submit may have gone through.
        """
        retry = retry_if_exception(_transient if idempotent else _connect_failure)
        async for attempt in AsyncRetrying(
            retry=retry,
            stop=stop_after_attempt(self._retries + 1),
            wait=wait_exponential(multiplier=self._retry_wait, max=max(self._retry_wait, 5.0)),
            reraise=True,
        ):
            with attempt:
                return await self._once(kind, argv)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _once(self, kind: str, argv: Sequence[str]) -> str:
        if self._bucket is not None:
            await self._bucket.acquire()
        full = (self._exe(argv[0]), *argv[1:])
        self.calls[kind] += 1
        self.history.append(full)
        try:
            proc = await asyncio.create_subprocess_exec(
                *full,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
            )
        except OSError as exc:
            raise SlurmError(f"{argv[0]}: cannot execute: {exc.strerror}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self._timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise Timeout(f"{argv[0]}: no answer within {self._timeout:g}s") from None
        except asyncio.CancelledError:
            # Shutdown or a sibling read failed: leave no orphaned Slurm command behind.
            if proc.returncode is None:
                proc.kill()
            raise
        if proc.returncode != 0:
            text = err.decode(errors="replace") or out.decode(errors="replace")
            raise from_text(text, command=f"{argv[0]} {argv[1] if len(argv) > 1 else ''}".strip())
        return out.decode(errors="replace")


def make_runner(settings: SlurmSettings, *, bucket: TokenBucket | None = None) -> Runner:
    """The runner a backend uses; pass the backend's own bucket when it makes RPCs too, so
    ``calls_per_second`` bounds all of syncd's calls to slurmctld together, not each path."""
    return Runner(
        bin_dir=settings.bin_dir,
        conf=settings.conf,
        timeout=settings.timeout,
        bucket=bucket or TokenBucket(rate=settings.calls_per_second, burst=settings.burst),
        retries=settings.retries,
        retry_wait=settings.retry_wait,
    )
