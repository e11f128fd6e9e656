"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

One batch at a time holds a transaction-level advisory lock, so however many relay instances run,
exactly one publishes at a time (the others stand by) and each batch starts after the previous one's
"sent" marks are committed: per-key order is the order of commits. The batch transaction publishes
with the idempotent producer, waits for every acknowledgement, then marks the rows sent; a crash in
between republishes them, and consumers drop the duplicates by event_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from datetime import timedelta

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.faults import fault_point
from shared.logging import get_logger

log = get_logger(__name__)

PUBLISHED = Counter("tierstream_outbox_published_total", "Outbox messages published to Kafka", ["service"])
BACKLOG = Gauge("tierstream_outbox_backlog", "Outbox messages not yet published", ["service"])

_CLAIM = text("SELECT id, topic, key, value, headers FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT :limit")
_MARK_SENT = text("UPDATE outbox SET sent_at = now() WHERE id = ANY(:ids)")
_PURGE = text("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => :secs)")
_BACKLOG = text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")


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
        batch_size: int = 500,
        idle_interval_s: float = 0.05,
        retention: timedelta = timedelta(hours=72),
        purge_every_s: float = 60.0,
        backlog_every_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.service = service
        self.batch_size = batch_size
        self.idle_interval_s = idle_interval_s
        self.retention = retention
        self.purge_every_s = purge_every_s
        self.backlog_every_s = backlog_every_s
        self.lock_key = relay_lock_key(service)

    async def publish_batch(self) -> int | None:
        """Publish one batch. Returns the number published, or None when another relay is active."""
        async with self.engine.begin() as conn:
            locked = await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self.lock_key})
            if not locked:
                return None
            rows = (await conn.execute(_CLAIM, {"limit": self.batch_size})).all()
            if not rows:
                return 0
            pending = [
                await self.producer.send(
                    row.topic,
                    value=bytes(row.value),
                    key=row.key.encode() if row.key is not None else None,
                    headers=[(k, v.encode()) for k, v in row.headers],
                )
                for row in rows
            ]
            await asyncio.gather(*pending)
            fault_point("relay_exit_after_ack")  # inert unless TIERSTREAM_FAULT_INJECT names it (tests)
            await conn.execute(_MARK_SENT, {"ids": [row.id for row in rows]})
        PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    async def purge(self) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(_PURGE, {"secs": self.retention.total_seconds()})
            return result.rowcount or 0

    async def backlog(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(_BACKLOG) or 0)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; database and broker outages are retried with backoff."""
        log.info("relay.started", service=self.service)
        backoff = 0.5
        loop = asyncio.get_running_loop()
        next_purge = loop.time() + self.purge_every_s
        next_backlog = loop.time()  # the gauge has a value from the first batch on (an index-only count)
        while not stop.is_set():
            published: int | None = 0
            failed = False
            try:
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
            if loop.time() >= next_backlog:  # also while Kafka is down: that is when the backlog grows
                next_backlog = loop.time() + self.backlog_every_s
                with contextlib.suppress(Exception):  # the database is down too: nothing to count
                    BACKLOG.labels(self.service).set(await self.backlog())
            if failed:
                await _sleep_until(stop, backoff)
                backoff = min(backoff * 2, 10.0)
            elif published is None:  # standby: another instance holds the lock
                await _sleep_until(stop, 1.0)
            elif published < self.batch_size:
                await _sleep_until(stop, self.idle_interval_s)
        log.info("relay.stopped", service=self.service)


async def _sleep_until(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
