"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

One batch at a time holds a transaction-level advisory lock, so however many relay instances run,
exactly one claims and marks rows at a time (the others stand by) and each batch starts after the previous
one's "sent" marks are committed: per-key order is the order of commits. The batch transaction publishes
with the idempotent producer, waits for every acknowledgement, then marks the rows sent; a crash in
between republishes them, and consumers drop the duplicates by event_id.

When some sends of a batch fail (the broker went away), the rows Kafka did acknowledge are still marked
sent — for each key, those before its first failure, so a key's order holds — and only the rest is
retried: a retry does not publish the acknowledged part again. The producer is then replaced before the
next batch: after a send timed out, an idempotent producer's sequence numbers no longer match the
broker's, and it would fail with ``OutOfOrderSequenceNumber`` for good (aiokafka keeps its producer id).

A batch waits for its acknowledgements at most ``ack_timeout_s`` inside its transaction. When Kafka is away
(stopped, hung, cut off) an idempotent producer never gives up on a batch it has sent: it retries it until
the broker answers, however long that takes. Waiting for that inside the transaction held a PostgreSQL
transaction open for the whole outage (holding back vacuum on the outbox and the event store) and kept
the relay from stopping. So after ``ack_timeout_s`` the transaction commits what was acknowledged and ends;
the rest stays *in flight*: the producer keeps retrying it, the relay claims nothing new and waits for it
outside any transaction (``tierstream_outbox_unacknowledged`` counts it), and once Kafka answered, marks
it sent in a new transaction under the lock: when the producer's retries get through, nothing is sent
twice for the outage. What is not marked — the producer gave up on it in the end (a partition that lost its
leader), the relay stopped meanwhile, or a standby relay took the lock — stays unsent, and whoever
publishes next sends it again (at least once, as after a crash; the late originals are duplicates only,
since every claim starts at the oldest unsent row). A relay asked to stop gives the acknowledgements on
their way ``STOP_GRACE_S`` more, so a deploy does not re-send the batch it interrupted.
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
UNACKNOWLEDGED = Gauge(
    "tierstream_outbox_unacknowledged",
    "Outbox messages handed to Kafka and not acknowledged within the relay's ack timeout (Kafka away); "
    "the producer keeps retrying them",
    ["service"],
)
OLDEST_UNSENT = Gauge(
    "tierstream_outbox_oldest_unsent_age_seconds",
    "Age of the oldest outbox message not yet published (0 when none is waiting)",
    ["service"],
)

_CLAIM = text("SELECT id, topic, key, value, headers FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT :limit")
#: (``sent_at IS NULL``: in-flight rows confirmed late may have been marked by a relay that took over)
_MARK_SENT = text("UPDATE outbox SET sent_at = now() WHERE id = ANY(:ids) AND sent_at IS NULL")
_PURGE = text("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => :secs)")
_BACKLOG = text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
_OLDEST_UNSENT = text(
    "SELECT coalesce(extract(epoch FROM now() - (SELECT created_at FROM outbox WHERE sent_at IS NULL "
    "ORDER BY id LIMIT 1)), 0)"
)


#: How long a batch waits for Kafka's acknowledgements inside its transaction (see the module). Longer
#: than the producer's request timeout, so that a broker that answers late is not mistaken for one away.
ACK_TIMEOUT_S = 15.0
#: How long a relay asked to stop still waits for the acknowledgements of the batch it sent (normally
#: milliseconds away): what they confirm is marked, and not published again by the next relay.
STOP_GRACE_S = 3.0


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
        ack_timeout_s: float = ACK_TIMEOUT_S,
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
        self.ack_timeout_s = ack_timeout_s
        self.lock_key = relay_lock_key(service)
        #: the last batch's rows and sends while some still wait for Kafka (see the module)
        self._in_flight: InFlight | None = None
        self._stop = asyncio.Event()  # ``run``'s: ends a wait for acknowledgements early
        for metric in (PUBLISHED, BACKLOG, UNACKNOWLEDGED, OLDEST_UNSENT):
            metric.labels(service)  # every series exists from the start, at 0 until measured

    async def publish_batch(self) -> int | None:
        """Publish one batch. Returns the number published, or None when another relay is active.

        Raises :class:`PublishFailed` when Kafka did not acknowledge some of the batch, after the
        acknowledged part was marked sent (see the module), and :class:`AwaitingAcknowledgement` when
        some of it is still in flight after ``ack_timeout_s``."""
        async with self.engine.begin() as conn:
            locked = await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self.lock_key})
            if not locked:
                return None
            rows = (await conn.execute(_CLAIM, {"limit": self.batch_size})).all()
            if not rows:
                return 0
            in_flight = InFlight(rows, await self._send(rows))
            await in_flight.wait(self.ack_timeout_s, self._stop)
            fault_point("relay_exit_after_ack")  # inert unless TIERSTREAM_FAULT_INJECT names it (tests)
            sent = acknowledged_in_key_order(rows, in_flight.outcomes())
            if sent:
                await conn.execute(_MARK_SENT, {"ids": [row.id for row in sent]})
        in_flight.marked = len(sent)
        PUBLISHED.labels(self.service).inc(len(sent))
        return self._settled(in_flight)

    async def confirm_in_flight(self) -> int | None:
        """Mark the in-flight rows sent once Kafka answered for all of them; the count newly marked, or None
        when another relay took over meanwhile (it publishes them again).

        Raises :class:`AwaitingAcknowledgement` while some still wait (after ``ack_timeout_s`` more), and
        :class:`PublishFailed` when Kafka refused some in the end."""
        in_flight = self._in_flight
        assert in_flight is not None
        await in_flight.wait(self.ack_timeout_s, self._stop)
        if in_flight.pending():
            raise AwaitingAcknowledgement(len(in_flight.rows), in_flight.pending())
        self._replace_producer = self._replace_producer or in_flight.failed()  # before anything can fail here
        async with self.engine.begin() as conn:
            locked = await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self.lock_key})
            if locked:
                sent = acknowledged_in_key_order(in_flight.rows, in_flight.outcomes())
                if sent:
                    result = await conn.execute(_MARK_SENT, {"ids": [row.id for row in sent]})
                    newly = result.rowcount or 0
                    in_flight.marked += newly
                    PUBLISHED.labels(self.service).inc(newly)
        self._in_flight = None  # only now: a database failure above keeps it for the next attempt
        UNACKNOWLEDGED.labels(self.service).set(0)
        if not locked:
            log.info("relay.in_flight_left_to_active_relay", service=self.service, rows=len(in_flight.rows))
            return None
        log.info(
            "relay.in_flight_acknowledged", service=self.service, rows=len(in_flight.rows), marked=in_flight.marked
        )
        self._settled(in_flight)
        return in_flight.marked

    def _settled(self, in_flight: InFlight) -> int:
        """After a batch's marks committed: keep what is still in flight, or report what failed."""
        if pending := in_flight.pending():
            self._in_flight = in_flight
            UNACKNOWLEDGED.labels(self.service).set(pending)
            raise AwaitingAcknowledgement(len(in_flight.rows), pending)
        if in_flight.failed():
            self._replace_producer = True
            cause = next(o for o in in_flight.outcomes() if isinstance(o, BaseException))
            raise PublishFailed(len(in_flight.rows), in_flight.marked, cause)
        return len(in_flight.rows)

    async def _send(self, rows: Sequence[Any]) -> list[asyncio.Future[Any]]:
        """Each row's delivery: the future of Kafka's acknowledgement, or a failed one holding the exception
        that stopped its ``send`` call (a row after a failed ``send`` call is not sent at all)."""
        sends: list[asyncio.Future[Any]] = []
        for row in rows:
            try:
                sends.append(
                    await self.producer.send(
                        row.topic,
                        value=bytes(row.value),
                        key=row.key.encode() if row.key is not None else None,
                        headers=[(k, v.encode()) for k, v in row.headers],
                    )
                )
            except Exception as exc:  # e.g. no metadata for the topic while the broker is down
                failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                failed.set_exception(exc)
                sends.extend([failed] * (len(rows) - len(sends)))
                break
        return sends

    async def _renew_producer(self) -> None:
        """Replace the producer (its sends failed); raises while the broker is still away (retried)."""
        assert self.new_producer is not None
        old, self.producer = self.producer, self.new_producer()
        await stop_producer(old, self.ack_timeout_s)
        await self.producer.start()
        self._replace_producer = False
        log.info("relay.producer_replaced", service=self.service)

    async def close(self) -> None:
        """Stop the producer in use (after ``run``), waiting a few seconds at most for what it still holds."""
        await stop_producer(self.producer, min(self.ack_timeout_s, 5.0))

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
        self._stop = stop
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
                if self._in_flight is not None:
                    await self.confirm_in_flight()
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
            except AwaitingAcknowledgement as exc:  # its wait was the pause; no backoff, no new batch
                log.warning("relay.awaiting_kafka", rows=exc.claimed, unacknowledged=exc.pending)
                continue
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


class InFlight:
    """A batch's rows, their sends (futures the producer resolves when Kafka answers), and how many of the
    rows are marked sent so far."""

    def __init__(self, rows: Sequence[Any], sends: list[asyncio.Future[Any]]) -> None:
        self.rows, self.sends = rows, sends
        self.marked = 0
        #: resolved when every send is answered; one per batch, however often it is waited for
        self.answered: asyncio.Future[Any] = asyncio.gather(
            *{send for send in sends if not send.done()}, return_exceptions=True
        )

    async def wait(self, timeout_s: float, stop: asyncio.Event) -> None:
        """Until every send is answered or ``timeout_s`` passed; once ``stop`` is set, ``STOP_GRACE_S`` at
        most. Cancels none of the sends."""
        if self.answered.done():
            return
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([self.answered, stopping], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if stop.is_set() and not self.answered.done():
            await asyncio.wait([self.answered], timeout=STOP_GRACE_S)

    def pending(self) -> int:
        return sum(not send.done() for send in self.sends)

    def outcomes(self) -> list[object]:
        """Each row's acknowledgement or exception; a row still waiting counts as not acknowledged."""
        return [_outcome(send) for send in self.sends]

    def failed(self) -> bool:
        return any(isinstance(outcome, BaseException) for outcome in self.outcomes())


def _outcome(send: asyncio.Future[Any]) -> object:
    if not send.done():
        return _NOT_YET_ACKNOWLEDGED
    if send.cancelled():
        return asyncio.CancelledError()
    return send.exception() or send.result()


class AwaitingAcknowledgement(Exception):
    """Part of a batch is still in flight after the ack timeout: Kafka is away (see the module)."""

    def __init__(self, claimed: int, pending: int) -> None:
        super().__init__(f"{pending} of {claimed} outbox messages still wait for Kafka's acknowledgement")
        self.claimed, self.pending = claimed, pending


_NOT_YET_ACKNOWLEDGED = TimeoutError("not acknowledged within the relay's ack timeout")


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


async def stop_producer(producer: AIOKafkaProducer, timeout_s: float) -> None:
    """Stop ``producer``, waiting at most ``timeout_s`` for what it still has to deliver.

    aiokafka's ``stop`` waits until every batch is delivered, and an idempotent producer retries a batch for
    as long as Kafka is away: the relay would not stop (or replace its producer) until Kafka came back. What
    is left unacknowledged stays unsent in the outbox and is published again by the next relay."""
    try:
        async with asyncio.timeout(timeout_s):
            await producer.stop()
    except TimeoutError:
        log.warning("relay.producer_abandoned", waited_s=timeout_s)
    except Exception as exc:
        log.warning("relay.producer_stop_failed", error=repr(exc))


async def _sleep_until(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
