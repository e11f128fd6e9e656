"""Exactly-once-in-effect consumption: Kafka → projection in PostgreSQL.

For every poll, in ONE database transaction: validate each record (invalid → dead letter), drop
event_ids already in the inbox, let the projection apply the new events (it may stage outgoing
messages), write dead letters + outgoing messages to the outbox, and store the next offset per
(group, topic, partition), with a fingerprint of the record before it. On assignment the consumer seeks
to the offsets stored in PostgreSQL (to the record before, to compare it: a replaced log is read again);
Kafka-side commits are advisory only (for lag tooling).

Which records of a poll may be applied, and from where each partition is read, is the part of
:class:`~shared.messaging.positions.PartitionPositions` (contiguity: a partition's records are applied
only from its stored offset on, without a hole; see that module). The loop here: poll → filter through
the positions → dedupe, apply and store the offsets in one transaction → advance the positions.

Failures: a transient error (database or connection) rolls back and retries the same records with
backoff, forever — nothing is skipped. Any other error from the projection switches to one savepoint
per record, retried a bounded number of times, and then dead-letters that record with the exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from structlog.stdlib import BoundLogger

from shared.events.envelope import Envelope
from shared.events.registry import InvalidEvent, parse_envelope
from shared.logging import get_logger
from shared.messaging.deadletter import dead_letter
from shared.messaging.kafka import METADATA_MAX_AGE_MS
from shared.messaging.outbox import OutboxMessage, write_outbox
from shared.messaging.positions import PartitionPositions, StoredOffset, fingerprint
from shared.messaging.transient import is_transient  # imported from here by the sweeps and middleware

log = get_logger(__name__)

APPLIED = Counter("tierstream_events_applied_total", "Events applied to a projection", ["group"])
DUPLICATES = Counter("tierstream_events_duplicate_total", "Redelivered events dropped by the inbox", ["group"])
DEADLETTERED = Counter("tierstream_events_deadlettered_total", "Records sent to the dead-letter topic", ["group"])
PROJECTION_LATENCY = Histogram(
    "tierstream_projection_latency_seconds",
    "Time from an applied event's occurred_at to the commit of the batch that applied it",
    ["group"],
    # From live traffic (sub-second) to a consumer catching up on a backlog (hours).
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600),
)

_INBOX = text(
    "INSERT INTO inbox (consumer_group, event_id) SELECT :g, unnest(CAST(:ids AS uuid[])) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)
# The fingerprint follows the offset: replaced when the offset moves forward or stays (SET reads the old row).
# It is tagged with the offset of its record, so a row whose offset moved without it (a replica on code from
# before core schema v3, during a rolling upgrade) loads without a fingerprint instead of a stale one.
_SAVE_OFFSETS = text(
    "INSERT INTO consumer_offsets "
    "(consumer_group, topic, partition, next_offset, last_record_offset, last_record_fingerprint) "
    "SELECT :g, t, p, o, o - 1, f FROM unnest(CAST(:topics AS text[]), CAST(:parts AS int[]), "
    "CAST(:offs AS bigint[]), CAST(:fps AS bigint[])) AS x(t, p, o, f) "
    "ON CONFLICT (consumer_group, topic, partition) DO UPDATE "
    "SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset), "
    "last_record_offset = CASE WHEN EXCLUDED.next_offset >= consumer_offsets.next_offset "
    "THEN EXCLUDED.last_record_offset ELSE consumer_offsets.last_record_offset END, "
    "last_record_fingerprint = CASE WHEN EXCLUDED.next_offset >= consumer_offsets.next_offset "
    "THEN EXCLUDED.last_record_fingerprint ELSE consumer_offsets.last_record_fingerprint END, updated_at = now()"
)
_RESET_OFFSET = text(
    "UPDATE consumer_offsets SET next_offset = 0, last_record_offset = NULL, last_record_fingerprint = NULL, "
    "updated_at = now() WHERE consumer_group = :g AND topic = :t AND partition = :p AND next_offset = :o"
)
_LOAD_OFFSETS = text(
    "SELECT topic, partition, next_offset, CASE WHEN last_record_offset = next_offset - 1 "
    "THEN last_record_fingerprint END AS last_record_fingerprint FROM consumer_offsets WHERE consumer_group = :g"
)
#: Records decoded between two chances for the transaction in flight to proceed (see ``_fetch``).
_DECODE_CHUNK = 250
#: How long a stopping consumer waits for Kafka to take its leave (see ``ProjectionConsumer._stop_client``).
STOP_TIMEOUT_S = 10.0


class Projection(Protocol):
    """What a consumer feeds: new (deduplicated, valid) events, in partition order.

    A projection may also define ``committed(outgoing)``: the consumer calls it with the messages
    ``apply`` staged, once the batch's transaction has committed (e.g. for the projection's own metrics).
    """

    async def apply(self, conn: AsyncConnection, events: Sequence[Envelope]) -> Sequence[OutboxMessage]:
        """Apply ``events`` inside ``conn``'s transaction; return messages to stage in the outbox."""
        ...


def observe_projection_latency(group: str, envelopes: Iterable[Envelope], committed_at: float) -> None:
    """One latency observation per applied event: its occurred_at → ``committed_at`` (epoch seconds).

    An occurred_at ahead of this host's clock (skew) counts as 0 rather than as a negative latency."""
    histogram = PROJECTION_LATENCY.labels(group)
    for envelope in envelopes:
        histogram.observe(max(0.0, committed_at - envelope.occurred_at.timestamp()))


@dataclass
class _Decoded:
    record: ConsumerRecord
    envelope: Envelope | None
    dead: OutboxMessage | None
    #: why ``dead`` (for the log line; never the payload)
    problem: InvalidEvent | None = None


@dataclass
class _Poll:
    records: dict[TopicPartition, list[_Decoded]]
    #: 1 for the consumer's first fetch, 2 for the next... (fetches are sequential)
    number: int


def _log() -> BoundLogger:
    """This module's ``log`` as it is at the call: the position bookkeeping logs through it, so that its
    lines keep the consumer's logger name (and whoever replaces ``log`` here sees them too)."""
    return log


class ProjectionConsumer:
    def __init__(
        self,
        engine: AsyncEngine,
        projection: Projection,
        *,
        bootstrap_servers: str,
        group_id: str,
        topics: Sequence[str],
        deadletter_topic: str,
        batch_size: int = 500,
        handler_attempts: int = 3,
        client_id: str | None = None,
        session_timeout_ms: int = 10_000,
        max_partition_fetch_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.engine = engine
        self.projection = projection
        self.group_id = group_id
        self.topics = list(topics)
        self.deadletter_topic = deadletter_topic
        self.batch_size = batch_size
        self.handler_attempts = handler_attempts
        for metric in (APPLIED, DUPLICATES, DEADLETTERED, PROJECTION_LATENCY):
            metric.labels(group_id)  # every series exists from the start, at 0 until counted
        self._processing = asyncio.Lock()
        self._on_committed: Callable[[Sequence[OutboxMessage]], None] | None = getattr(projection, "committed", None)
        #: the rebalance listener's time limit: aiokafka does not heartbeat while the listener runs
        self._listener_budget_s = session_timeout_ms / 1000 / 3
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            client_id=client_id or group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_size,
            max_poll_interval_ms=300_000,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=min(1_000, session_timeout_ms // 3),
            # Room for a whole batch in one fetch response per partition (the default 1 MiB holds ~1,500
            # typical events), so that polls reach ``batch_size`` and share the per-transaction costs.
            max_partition_fetch_bytes=max_partition_fetch_bytes,
            isolation_level="read_committed",
            metadata_max_age_ms=METADATA_MAX_AGE_MS,  # partitions added to a topic are read within a minute
        )
        #: floors, re-reads, deferred positions and lag of the partitions held (offsets: ``self``)
        self.positions = PartitionPositions(self.consumer, self, group_id=group_id, log=_log)

    @property
    def joined(self) -> bool:
        """True while the consumer holds an assignment (possibly empty: a standby replica beyond the
        partition count) whose positions it took from PostgreSQL (the consume role's readiness)."""
        return self.positions.joined

    @joined.setter
    def joined(self, value: bool) -> None:
        self.positions.joined = value

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        self.consumer.subscribe(self.topics, listener=_SeekToStoredOffsets(self))
        await self.consumer.start()
        log.info("consumer.started", group=self.group_id, topics=self.topics)
        # The next poll is fetched and decoded while the current one's transaction runs (validation is
        # CPU work, the transaction mostly waits for PostgreSQL); it is filtered against the assignment
        # and the stored offsets only when its turn comes, after the current poll has committed.
        ahead = asyncio.create_task(self._fetch())
        try:
            while not stop.is_set():
                if self.positions.pending:
                    await self.positions.settle_pending(stop)
                poll = await ahead
                batch = self.positions.applicable(poll.records, poll.number)
                # Started after the filter's seeks (if any): this is the re-read they wait for.
                ahead = asyncio.create_task(self._fetch())
                if batch:
                    async with self._processing:
                        await self._process_until_done(batch, stop)
                    self.positions.advance(batch)
                    await self._advisory_commit(batch)
                self.positions.report_lag()
        finally:
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ahead
            await self._stop_client()
            log.info("consumer.stopped", group=self.group_id)

    async def _stop_client(self) -> None:
        """Leave the group and close, waiting ``STOP_TIMEOUT_S`` at most: with the broker hung, aiokafka's
        LeaveGroup waits its 40 s request timeout, longer than a container's stop grace. Positions are in
        PostgreSQL; the coordinator drops a member that left silently after the session timeout."""
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await self.consumer.stop()
        except TimeoutError:
            log.warning("consumer.stop_abandoned", group=self.group_id, waited_s=STOP_TIMEOUT_S)

    async def _fetch(self) -> _Poll:
        """The next poll, decoded in chunks that let a transaction in flight go on between them."""
        number = self.positions.fetch_started()
        fetched: dict[TopicPartition, list[_Decoded]] = {}
        for tp, records in (await self._poll()).items():
            decoded: list[_Decoded] = []
            for start in range(0, len(records), _DECODE_CHUNK):
                decoded.extend(self._decode(r) for r in records[start : start + _DECODE_CHUNK])
                await asyncio.sleep(0)
            fetched[tp] = decoded
        return _Poll(fetched, number)

    async def _poll(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Up to ``batch_size`` records: wait for the first ones, then add whatever else is already fetched.

        One ``getmany`` returns at most what the fetcher holds, often one fetch response per partition;
        topping the poll up from the buffer (without waiting) gives fuller batches on a backlog and
        changes nothing for live traffic.

        A top-up that does not continue a partition's records where they stopped (its position moved in
        between: ``getmany`` waits a rebalance out, and the new assignment starts elsewhere) is left out
        for that partition, with whatever follows, and the partition is sought to just after what the
        poll holds: the records left out are fetched again (on a quiet partition nothing else would
        bring them), and the positions' floor and contiguity check judge them at their turn.
        """
        batch = await self.consumer.getmany(timeout_ms=200, max_records=self.batch_size)
        count = sum(len(records) for records in batch.values())
        cut: set[TopicPartition] = set()
        while 0 < count < self.batch_size:
            more = await self.consumer.getmany(timeout_ms=0, max_records=self.batch_size - count)
            if not more:
                break
            for tp, records in more.items():
                count += len(records)
                held = batch.setdefault(tp, [])
                if tp in cut or (held and records[0].offset != held[-1].offset + 1):
                    cut.add(tp)
                else:
                    held.extend(records)
        assigned = self.consumer.assignment()
        for tp in cut & assigned:
            self.consumer.seek(tp, batch[tp][-1].offset + 1)
        return batch

    # -- stored offsets (``positions.StoredOffsets``: the table ``_finish`` writes) --------------
    async def load_offsets(self) -> dict[TopicPartition, StoredOffset]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_LOAD_OFFSETS, {"g": self.group_id})).all()
        return {
            TopicPartition(r.topic, r.partition): StoredOffset(r.next_offset, r.last_record_fingerprint) for r in rows
        }

    async def reset_stored_offset(self, tp: TopicPartition, stored: int) -> None:
        """Set a partition's stored offset back to 0 (and forget its fingerprint), unless someone moved it
        since it read ``stored``."""
        async with self.engine.begin() as conn:
            await conn.execute(_RESET_OFFSET, {"g": self.group_id, "t": tp.topic, "p": tp.partition, "o": stored})

    # -- processing -----------------------------------------------------------------------------
    async def _process_until_done(self, batch: dict[TopicPartition, list[_Decoded]], stop: asyncio.Event) -> None:
        decoded = [d for tp in sorted(batch) for d in batch[tp]]
        backoff = 0.2
        while True:
            try:
                await self._process(decoded)
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if stop.is_set():
                    raise
                log.warning("consumer.transient_failure", error=repr(exc), retry_in_s=backoff)
                self.positions.report_lag()  # a consumer stuck on its database shows its lag growing
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)

    async def process_records(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply ``records`` as one poll would (public for tests and rebuild tooling)."""
        await self._process([self._decode(r) for r in records])

    def _decode(self, record: ConsumerRecord) -> _Decoded:
        try:
            envelope = parse_envelope(record.value if record.value is not None else b"null")
            if record.key != envelope.customer_id.encode():
                raise _key_mismatch(record.key, envelope)
        except InvalidEvent as exc:
            dead = dead_letter(
                record,
                topic=self.deadletter_topic,
                consumer_group=self.group_id,
                reason=exc.reason,
                detail=str(exc),
                exception=exc,
                personal_data=exc.personal_data,
            )
            return _Decoded(record, None, dead, exc)
        return _Decoded(record, envelope, None)

    async def _process(self, decoded: Sequence[_Decoded]) -> None:
        try:
            async with self.engine.begin() as conn:
                fresh = await self._dedupe(conn, decoded)
                applied = [d.envelope for d in fresh if d.envelope is not None]
                outgoing = list(await self.projection.apply(conn, applied))
                await self._finish(conn, decoded, outgoing)
            self._committed(applied, outgoing)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning("consumer.batch_failed_switching_to_single", error=repr(exc), records=len(decoded))
            await self._process_one_by_one(decoded)

    async def _process_one_by_one(self, decoded: Sequence[_Decoded]) -> None:
        applied: list[Envelope] = []
        outgoing: list[OutboxMessage] = []
        async with self.engine.begin() as conn:
            extra_dead: list[OutboxMessage] = []
            for item in decoded:
                if item.envelope is None:
                    continue
                last_exc: Exception | None = None
                for attempt in range(1, self.handler_attempts + 1):
                    try:
                        async with conn.begin_nested():
                            fresh = [d.envelope for d in await self._dedupe(conn, [item]) if d.envelope is not None]
                            staged = await self.projection.apply(conn, fresh)
                        applied.extend(fresh)
                        outgoing.extend(staged)
                        last_exc = None
                        break
                    except Exception as exc:
                        if is_transient(exc):
                            raise
                        last_exc = exc
                        await asyncio.sleep(0.05 * attempt)
                if last_exc is not None:
                    env = item.envelope
                    log.error(
                        "consumer.deadlettered",
                        event_id=str(env.event_id),
                        event_type=env.event_type,
                        error=repr(last_exc),
                    )
                    extra_dead.append(
                        dead_letter(
                            item.record,
                            topic=self.deadletter_topic,
                            consumer_group=self.group_id,
                            reason="handler_failed",
                            detail=f"{env.event_type} v{env.schema_version} {env.event_id}: {last_exc!r}",
                            exception=last_exc,
                        )
                    )
            await self._finish(conn, decoded, outgoing + extra_dead)
        self._committed(applied, outgoing)

    def _committed(self, applied: Sequence[Envelope], outgoing: Sequence[OutboxMessage]) -> None:
        """Metrics of a batch whose transaction has committed (never of one that rolled back)."""
        APPLIED.labels(self.group_id).inc(len(applied))
        observe_projection_latency(self.group_id, applied, time.time())
        if self._on_committed is not None:
            self._on_committed(outgoing)

    async def _dedupe(self, conn: AsyncConnection, decoded: Sequence[_Decoded]) -> list[_Decoded]:
        candidates: dict[str, _Decoded] = {}  # event id → first delivery in this batch
        for item in decoded:
            if item.envelope is not None:
                candidates.setdefault(str(item.envelope.event_id), item)
        if not candidates:
            return []
        result = await conn.execute(_INBOX, {"g": self.group_id, "ids": list(candidates)})
        inserted = {str(row[0]) for row in result}
        fresh = [item for key, item in candidates.items() if key in inserted]
        if len(fresh) < len(decoded):
            DUPLICATES.labels(self.group_id).inc(len([d for d in decoded if d.envelope]) - len(fresh))
        return fresh

    async def _finish(self, conn: AsyncConnection, decoded: Sequence[_Decoded], outgoing: list[OutboxMessage]) -> None:
        dead = [d.dead for d in decoded if d.dead is not None]
        if dead:
            DEADLETTERED.labels(self.group_id).inc(len(dead))
            for d in decoded:
                if d.dead is not None:
                    _log_invalid(d)
        await write_outbox(conn, dead + outgoing)
        last: dict[tuple[str, int], ConsumerRecord] = {}  # per partition, the record stored offsets follow
        for d in decoded:
            key = (d.record.topic, d.record.partition)
            if key not in last or d.record.offset > last[key].offset:
                last[key] = d.record
        await conn.execute(
            _SAVE_OFFSETS,
            {
                "g": self.group_id,
                "topics": [t for t, _ in last],
                "parts": [p for _, p in last],
                "offs": [r.offset + 1 for r in last.values()],
                "fps": [fingerprint(r) for r in last.values()],
            },
        )

    async def _advisory_commit(self, batch: dict[TopicPartition, list[_Decoded]]) -> None:
        offsets = {tp: items[-1].record.offset + 1 for tp, items in batch.items() if items}
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:  # advisory only: PostgreSQL holds the truth
            log.debug("consumer.advisory_commit_failed", error=repr(exc))


def _key_mismatch(key: bytes | None, envelope: Envelope) -> InvalidEvent:
    """The record's key is not its envelope's customer_id (docs/events.md: Key = customer_id)."""
    shown = key.decode("utf-8", "backslashreplace") if key is not None else None
    return InvalidEvent(
        "key_mismatch",
        f"record key {shown!r} differs from the envelope's customer_id {envelope.customer_id!r}; "
        "the key of every event is its customer_id",
        event_type=envelope.event_type,
        schema_version=envelope.schema_version,
        event_id=str(envelope.event_id),
    )


def _log_invalid(decoded: _Decoded) -> None:
    """The log line of a record dead-lettered as invalid: where it was, why (the detail names fields and
    problems, never values: no payload, no personal data), and its event type and id — as parsed when
    parsing got that far, else from the record's headers."""
    record, problem = decoded.record, decoded.problem
    headers = {k: v for k, v in record.headers or () if v is not None}
    log.warning(
        "consumer.invalid_event",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        reason=problem.reason if problem is not None else None,
        detail=problem.detail[:1000] if problem is not None else None,
        event_type=(problem.event_type if problem is not None else None) or _header(headers, "event_type"),
        event_id=(problem.event_id if problem is not None else None) or _header(headers, "event_id"),
    )


def _header(headers: dict[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    return value[:100].decode("utf-8", "replace") if value is not None else None


class _SeekToStoredOffsets(ConsumerRebalanceListener):
    """Positions come from PostgreSQL, not from Kafka's committed offsets (``PartitionPositions``).

    Both callbacks run within a third of the session timeout: aiokafka does not heartbeat meanwhile."""

    def __init__(self, owner: ProjectionConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Called before every new assignment (with nothing revoked before the first one).
        self.owner.positions.begin_rebalance(revoked)  # forgets earlier seeks, and the lag of ``revoked``
        # Let the batch in flight commit (its offsets too) before the partitions move — but for a third of
        # the session timeout at most: aiokafka does not heartbeat meanwhile, and a batch retrying through
        # a database outage would get this member evicted, again and again. A batch that commits after
        # its partitions moved is still applied at most once: the inbox refuses what the new owner applied
        # first (or makes it wait for this commit), and stored offsets only go up. Never held around getmany.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._batch_done(), self.owner._listener_budget_s)

    async def _batch_done(self) -> None:
        async with self.owner._processing:
            pass

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.owner.positions.end_rebalance(assigned, within_s=self.owner._listener_budget_s)
