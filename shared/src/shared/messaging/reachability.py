"""Tierstream's own word on Kafka's reachability: one ``kafka.unreachable`` warning when the cluster stops
answering, one ``kafka.reachable_again`` when it answers again, with the bootstrap servers and how long.

aiokafka's own lines during an outage are retries (rate-limited by
:class:`shared.logging.RepeatedLibraryLines`) and say nothing once the broker is back. So a process with
a Kafka role probes the cluster itself — the metadata request ``/health/ready`` uses
(:func:`~shared.messaging.kafka.kafka_ready`) — every few seconds, and logs only the transitions: a
direct measurement, independent of what the relay or the consumer happen to be doing (an idle
producer sends nothing, so the absence of errors would not mean that Kafka is back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from shared.logging import get_logger
from shared.messaging.kafka import kafka_ready

log = get_logger(__name__)

#: The process roles that talk to Kafka: a process running one of them watches it.
KAFKA_ROLES = frozenset({"relay", "consume"})


class KafkaReachability:
    """Probes the cluster every ``interval_s`` and logs when it stops and starts answering (one line
    each per outage, both at warning so that a process logging warnings only shows the pair)."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        probe: Callable[[], Awaitable[bool]] | None = None,
        interval_s: float = 5.0,
        probe_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.probe = probe or (lambda: kafka_ready(bootstrap_servers, probe_timeout_s))
        self.interval_s = interval_s
        self.clock = clock
        self._last_reachable: float | None = None
        self._unreachable_since: float | None = None

    async def watch(self, stop: asyncio.Event) -> None:
        """Probe until ``stop`` is set."""
        while not stop.is_set():
            await self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)

    async def check(self) -> None:
        """One probe; a probe that raises counts as unreachable (the watcher outlives any failure)."""
        try:
            reachable, error = await self.probe(), None
        except Exception as exc:
            reachable, error = False, repr(exc)
        self.observe(reachable, error)

    def observe(self, reachable: bool, error: str | None = None) -> None:
        now = self.clock()
        if reachable:
            if self._unreachable_since is not None:
                log.warning(
                    "kafka.reachable_again",
                    bootstrap_servers=self.bootstrap_servers,
                    unreachable_for_s=round(now - self._unreachable_since, 1),
                )
                self._unreachable_since = None
            self._last_reachable = now
        elif self._unreachable_since is None:
            self._unreachable_since = now
            log.warning(
                "kafka.unreachable",
                bootstrap_servers=self.bootstrap_servers,
                last_reachable_s_ago=None if self._last_reachable is None else round(now - self._last_reachable, 1),
                error=error,
            )
