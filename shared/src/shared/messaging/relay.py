"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

One batch at a time holds a transaction-level advisory lock, so however many relay instances run,
exactly one publishes at a time (the others stand by) and each batch starts after the previous one's
"sent" marks are committed: per-key order is the order of commits. The batch transaction publishes
with the idempotent producer, waits for every acknowledgement, then marks the rows sent; a crash in
between republishes them, and consumers drop the duplicates by event_id.

When some sends of a batch fail (the broker went away), the rows Kafka did acknowledge are still marked
sent — for each key, those before its first failure, so a key's order holds — and only the rest is
retried: a retry does not publish the acknowledged part again. The producer is then replaced before the
next batch: after a send timed out, an idempotent producer's sequence numbers no longer match the
broker's, and it would fail with ``OutOfOrderSequenceNumber`` for good (aiokafka keeps its producer id).
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.faults import fault_point
from shared.logging import get_logger

log = get_logger(__name__)

PUBLISHED = Counter("tierstream_outbox_published_total", "Outbox messages published to Kafka", ["service"])
BACKLOG = Gauge("tierstream_outbox_backlog", "Outbox messages not yet published", ["service"])
OLDEST_UNSENT = Gauge(
    "tierstream_outbox_oldest_unsent_age_seconds",
    "Age of the oldest outbox message not yet published (0 when none is waiting)",
    ["service"],
)

_CLAIM = text("SELECT id, topic, key, value, headers FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT :limit")
_MARK_SENT = text("UPDATE outbox SET sent_at = now() WHERE id = ANY(:ids)")
_PURGE = text("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => :secs)")
_BACKLOG = text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
_OLDEST_UNSENT = text(
    "SELECT coalesce(extract(epoch FROM now() - (SELECT created_at FROM outbox WHERE sent_at IS NULL "
    "ORDER BY id LIMIT 1)), 0)"
)


def relay_lock_key(service: str) -> int:
    """A stable 32-bit advisory-lock key per service."""
    return zlib.crc32(f"tierstream.relay.{service}".encode())


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        *,
        service: str,
        new_producer: Callable[[], AIOKafkaProducer] | None = None,
        batch_size: int = 500,
        idle_interval_s: float = 0.05,
        retention: timedelta = timedelta(hours=72),
        purge_every_s: float = 60.0,
        backlog_every_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self.producer = producer
        #: makes a replacement for a producer whose sends failed (``run`` starts it); None: keep the one given
        self.new_producer = new_producer
        self._replace_producer = False
        self.service = service
        self.batch_size = batch_size
        self.idle_interval_s = idle_interval_s
        self.retention = retention
        self.purge_every_s = purge_every_s
        self.backlog_every_s = backlog_every_s
        self.lock_key = relay_lock_key(service)
        for metric in (PUBLISHED, BACKLOG, OLDEST_UNSENT):
            metric.labels(service)  # every series exists from the start, at 0 until measured

    async def publish_batch(self) -> int | None:
        """Publish one batch. Returns the number published, or None when another relay is active.

        Raises :class:`PublishFailed` when Kafka did not acknowledge some of the batch, after the
        acknowledged part was marked sent (see the module)."""
        async with self.engine.begin() as conn:
            locked = await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self.lock_key})
            if not locked:
                return None
            rows = (await conn.execute(_CLAIM, {"limit": self.batch_size})).all()
            if not rows:
                return 0
            outcomes = await self._send(rows)
            fault_point("relay_exit_after_ack")  # inert unless TIERSTREAM_FAULT_INJECT names it (tests)
            sent = acknowledged_in_key_order(rows, outcomes)
            if sent:
                await conn.execute(_MARK_SENT, {"ids": [row.id for row in sent]})
        PUBLISHED.labels(self.service).inc(len(sent))
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            self._replace_producer = True
            raise PublishFailed(len(rows), len(sent), failures[0])
        return len(rows)

    async def _send(self, rows: Sequence[Any]) -> list[object]:
        """Each row's outcome: Kafka's acknowledgement, or the exception that stopped it (a row after a
        failed ``send`` call is not sent at all: its outcome is that exception too)."""
        pending: list[asyncio.Future[Any]] = []
        for row in rows:
            try:
                pending.append(
                    await self.producer.send(
                        row.topic,
                        value=bytes(row.value),
                        key=row.key.encode() if row.key is not None else None,
                        headers=[(k, v.encode()) for k, v in row.headers],
                    )
                )
            except Exception as exc:  # e.g. no metadata for the topic while the broker is down
                outcomes: list[object] = list(await asyncio.gather(*pending, return_exceptions=True))
                return outcomes + [exc] * (len(rows) - len(pending))
        return list(await asyncio.gather(*pending, return_exceptions=True))

    async def _renew_producer(self) -> None:
        """Replace the producer (its sends failed); raises while the broker is still away (retried)."""
        assert self.new_producer is not None
        old, self.producer = self.producer, self.new_producer()
        with contextlib.suppress(Exception):
            await old.stop()
        await self.producer.start()
        self._replace_producer = False
        log.info("relay.producer_replaced", service=self.service)

    async def purge(self) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(_PURGE, {"secs": self.retention.total_seconds()})
            return result.rowcount or 0

    async def backlog(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(_BACKLOG) or 0)

    async def oldest_unsent_age_s(self) -> float:
        async with self.engine.connect() as conn:
            return float(await conn.scalar(_OLDEST_UNSENT) or 0)

    async def _report_backlog(self, stop: asyncio.Event) -> None:
        """Refresh the backlog gauges every ``backlog_every_s``, on their own: a batch waiting up to the
        producer's request timeout for a broker that went away must not stop them (that is when they grow)."""
        while not stop.is_set():
            with contextlib.suppress(Exception):  # the database is down too: nothing to count
                BACKLOG.labels(self.service).set(await self.backlog())
                OLDEST_UNSENT.labels(self.service).set(await self.oldest_unsent_age_s())
            await _sleep_until(stop, self.backlog_every_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; database and broker outages are retried with backoff."""
        log.info("relay.started", service=self.service)
        reporter = asyncio.create_task(self._report_backlog(stop))
        try:
            await self._relay(stop)
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        log.info("relay.stopped", service=self.service)

    async def _relay(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        loop = asyncio.get_running_loop()
        next_purge = loop.time() + self.purge_every_s
        while not stop.is_set():
            published: int | None = 0
            failed = False
            try:
                if self._replace_producer and self.new_producer is not None:
                    await self._renew_producer()
                published = await self.publish_batch()
                backoff = 0.5
                if loop.time() >= next_purge:
                    next_purge = loop.time() + self.purge_every_s  # a failing purge waits its turn too
                    purged = await self.purge()
                    if purged:
                        log.info("relay.purged", rows=purged)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failed = True
                log.warning("relay.retry", error=repr(exc), retry_in_s=backoff)
            if failed:
                await _sleep_until(stop, backoff)
                backoff = min(backoff * 2, 10.0)
            elif published is None:  # standby: another instance holds the lock
                await _sleep_until(stop, 1.0)
            elif published < self.batch_size:
                await _sleep_until(stop, self.idle_interval_s)


class PublishFailed(Exception):
    """Kafka did not acknowledge part of a batch; the acknowledged part was marked sent."""

    def __init__(self, claimed: int, sent: int, cause: BaseException) -> None:
        super().__init__(f"{claimed - sent} of {claimed} outbox messages not acknowledged ({cause!r}); retrying them")
        self.claimed, self.sent, self.cause = claimed, sent, cause


def acknowledged_in_key_order(rows: Sequence[Any], outcomes: Sequence[object]) -> list[Any]:
    """The rows that may be marked sent: acknowledged, and with no earlier row of their key unacknowledged
    (a key's later row must not be marked while an earlier one waits to be sent again)."""
    blocked: set[Any] = set()
    sent = []
    for row, outcome in zip(rows, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            blocked.add(row.key)
        elif row.key not in blocked:
            sent.append(row)
    return sent


async def _sleep_until(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
