"""Exactly-once-in-effect consumption: Kafka → projection in PostgreSQL.

For every poll, in ONE database transaction: validate each record (invalid → dead letter), drop
event_ids already in the inbox, let the projection apply the new events (it may stage outgoing
messages), write dead letters + outgoing messages to the outbox, and store the next offset per
(group, topic, partition). On assignment the consumer seeks to the offsets stored in PostgreSQL;
Kafka-side commits are advisory only (for lag tooling).

Contiguity: a poll is applied for a partition only from the stored offset on. Records below it were
applied already and are dropped; a poll starting above it would leave a hole, so the partition is sought
back to the stored offset and re-read. Kafka has legitimate gaps too (transaction markers and aborted
transactions under read_committed, retention or compaction below the stored offset): a gap still there
in a poll fetched after that seek is accepted, with a warning — once, never in a loop.

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
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.events.envelope import Envelope
from shared.events.registry import InvalidEvent, parse_envelope
from shared.logging import get_logger
from shared.messaging.deadletter import dead_letter
from shared.messaging.outbox import OutboxMessage, write_outbox

log = get_logger(__name__)

APPLIED = Counter("tierstream_events_applied_total", "Events applied to a projection", ["group"])
DUPLICATES = Counter("tierstream_events_duplicate_total", "Redelivered events dropped by the inbox", ["group"])
DEADLETTERED = Counter("tierstream_events_deadlettered_total", "Records sent to the dead-letter topic", ["group"])
LAG = Gauge(
    "tierstream_consumer_lag",
    "Records not yet applied: the partition's end offset (as last fetched) minus the offset stored next",
    ["group", "topic", "partition"],
)
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
_SAVE_OFFSETS = text(
    "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset) "
    "SELECT :g, t, p, o FROM unnest(CAST(:topics AS text[]), CAST(:parts AS int[]), CAST(:offs AS bigint[])) "
    "AS x(t, p, o) "
    "ON CONFLICT (consumer_group, topic, partition) DO UPDATE "
    "SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset), updated_at = now()"
)
#: Records decoded between two chances for the transaction in flight to proceed (see ``_fetch``).
_DECODE_CHUNK = 250
#: How long an assignment waits for the partitions' end offsets (see ``on_partitions_assigned``).
_LOG_END_TIMEOUT_S = 2.0
_RESET_OFFSET = text(
    "UPDATE consumer_offsets SET next_offset = 0, updated_at = now() "
    "WHERE consumer_group = :g AND topic = :t AND partition = :p AND next_offset = :o"
)
_LOAD_OFFSETS = text("SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = :g")


class Projection(Protocol):
    """What a consumer feeds: new (deduplicated, valid) events, in partition order.

    A projection may also define ``committed(outgoing)``: the consumer calls it with the messages
    ``apply`` staged, once the batch's transaction has committed (e.g. for the projection's own metrics).
    """

    async def apply(self, conn: AsyncConnection, events: Sequence[Envelope]) -> Sequence[OutboxMessage]:
        """Apply ``events`` inside ``conn``'s transaction; return messages to stage in the outbox."""
        ...


#: SQLSTATEs meaning "the server cannot serve right now", not "the statement is wrong": class 08
#: (connection exception), admin / crash shutdown, cannot connect now (e.g. "the database system is
#: shutting down", raised at connect time as a plain DBAPIError), too many connections.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` means the database (or the network to it) is unavailable: retry later."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    return state is not None and (state.startswith("08") or state in _UNAVAILABLE_SQLSTATES)


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the driver error behind ``exc`` (asyncpg's, wrapped by SQLAlchemy), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            return state
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return None


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


@dataclass
class _Poll:
    records: dict[TopicPartition, list[_Decoded]]
    #: 1 for the consumer's first fetch, 2 for the next... (fetches are sequential)
    number: int


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
        self._processing = asyncio.Lock()
        self._on_committed: Callable[[Sequence[OutboxMessage]], None] | None = getattr(projection, "committed", None)
        #: next offset per partition as stored in PostgreSQL (set on assignment, raised per batch)
        self._floors: dict[TopicPartition, int] = {}
        #: fetches started so far (a poll numbered above the count at a seek was fetched after it)
        self._fetches = 0
        #: partitions sought back to their floor over a gap → ``_fetches`` at that seek
        self._rereads: dict[TopicPartition, int] = {}
        #: from a rebalance's revocation to the end of its assignment (and before the first one), when
        #: positions change behind the consumer's back (see ``_SeekToStoredOffsets``)
        self._rebalancing = True
        #: assignments so far, and the partitions of the latest whose positions are still to be taken from
        #: PostgreSQL (paused meanwhile: the listener could not load them, see ``_settle_pending``)
        self._assignments = 0
        self._pending: list[TopicPartition] = []
        #: the assignment listener's time limit: aiokafka does not heartbeat while the listener runs
        self._listener_budget_s = session_timeout_ms / 1000 / 3
        #: partitions with a lag sample from this consumer (removed when given up)
        self._lagging: set[TopicPartition] = set()
        #: True while the consumer holds an assignment (possibly empty: a standby replica beyond the
        #: partition count) whose positions it took from PostgreSQL
        self.joined = False
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
        )

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
                if self._pending:
                    await self._settle_pending(stop)
                poll = await ahead
                batch = self._contiguous(poll, self._at_or_above_floor(self._still_assigned(poll.records)))
                # Started after the filter's seeks (if any): this is the re-read they wait for.
                ahead = asyncio.create_task(self._fetch())
                if batch:
                    async with self._processing:
                        await self._process_until_done(batch, stop)
                    for tp, items in batch.items():
                        self._floors[tp] = items[-1].record.offset + 1
                    await self._advisory_commit(batch)
                self._report_lag()
        finally:
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ahead
            await self.consumer.stop()
            log.info("consumer.stopped", group=self.group_id)

    async def _fetch(self) -> _Poll:
        """The next poll, decoded in chunks that let a transaction in flight go on between them."""
        self._fetches += 1
        number = self._fetches
        fetched: dict[TopicPartition, list[_Decoded]] = {}
        for tp, records in (await self._poll()).items():
            decoded: list[_Decoded] = []
            for start in range(0, len(records), _DECODE_CHUNK):
                decoded.extend(self._decode(r) for r in records[start : start + _DECODE_CHUNK])
                await asyncio.sleep(0)
            fetched[tp] = decoded
        return _Poll(fetched, number)

    def _still_assigned(self, fetched: dict[TopicPartition, list[_Decoded]]) -> dict[TopicPartition, list[_Decoded]]:
        """Drop records of partitions revoked while they waited (their new owner reads them).

        ``assignment()`` still lists a partition during a rebalance that hands it straight back to this
        consumer; keep it so. Dropping such a poll (tried with an "owned" set emptied on revocation) lost
        events: a later poll could still come from the old position, above the stored offset, and be
        applied, leaving a gap (seen in the SIGKILL fault test; ``_contiguous`` now refuses such a poll,
        but every drop costs a re-read). A poll kept for a partition that does move away is applied at
        most once anyway: the inbox refuses what its new owner applies too."""
        assigned = self.consumer.assignment() - set(self._pending)  # pending: positions not known yet
        kept = {tp: items for tp, items in fetched.items() if tp in assigned}
        if len(kept) < len(fetched):
            log.info(
                "consumer.dropped_revoked", partitions=[f"{t.topic}:{t.partition}" for t in fetched if t not in kept]
            )
        return kept

    async def _poll(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Up to ``batch_size`` records: wait for the first ones, then add whatever else is already fetched.

        One ``getmany`` returns at most what the fetcher holds, often one fetch response per partition;
        topping the poll up from the buffer (without waiting) gives fuller batches on a backlog and
        changes nothing for live traffic.

        A top-up that does not continue a partition's records where they stopped (its position moved in
        between: ``getmany`` waits a rebalance out, and the new assignment starts elsewhere) is left out
        for that partition, with whatever follows, and the partition is sought to just after what the
        poll holds: the records left out are fetched again (on a quiet partition nothing else would
        bring them), and the floor and ``_contiguous`` judge them at their turn.
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

    def _at_or_above_floor(self, batch: dict[TopicPartition, list[_Decoded]]) -> dict[TopicPartition, list[_Decoded]]:
        """Drop records below the offset PostgreSQL says comes next.

        A fetch can start from Kafka's (advisory) committed offset before the seek made on assignment
        takes effect; whatever such a fetch returns below the stored offset was already applied.
        """
        kept: dict[TopicPartition, list[_Decoded]] = {}
        for tp, records in batch.items():
            floor = self._floors.get(tp, 0)
            fresh = [d for d in records if d.record.offset >= floor]
            if len(fresh) < len(records):
                log.info(
                    "consumer.skipped_below_stored_offset",
                    partition=f"{tp.topic}:{tp.partition}",
                    records=len(records) - len(fresh),
                    stored_offset=floor,
                )
            if fresh:
                kept[tp] = fresh
        return kept

    def _contiguous(
        self, poll: _Poll, batch: dict[TopicPartition, list[_Decoded]]
    ) -> dict[TopicPartition, list[_Decoded]]:
        """Keep the partitions whose records start at the floor; seek the others back to it.

        ``batch`` is ``poll``'s records at or above the floor. One starting above it would leave a hole
        (a poll fetched from a stale position, e.g. after an earlier poll was dropped), so it is not
        applied and the partition is re-read from the floor. The proof that a gap is real (see the
        module docstring) is a poll fetched after that seek — numbered above the fetches started before
        it — with no rebalance since (a rebalance forgets the seek). During a rebalance nothing is
        sought: the assignment's own seek to the stored offsets is the re-read.

        On aiokafka's side, ``seek`` drops the records it buffered for the partition and discards fetch
        responses for another position, so ``getmany`` after a seek returns nothing fetched before it;
        what a poll already returned is this method's to refuse.
        """
        kept: dict[TopicPartition, list[_Decoded]] = {}
        for tp, records in batch.items():
            floor, first = self._floors.get(tp, 0), records[0].record.offset
            sought = self._rereads.pop(tp, None)
            if first == floor:
                kept[tp] = records
            elif sought is not None and poll.number > sought:
                log.warning(
                    "consumer.gap_accepted",
                    partition=f"{tp.topic}:{tp.partition}",
                    stored_offset=floor,
                    first_offset=first,
                )
                kept[tp] = records
            else:
                log.info(
                    "consumer.gap_not_applied",
                    partition=f"{tp.topic}:{tp.partition}",
                    stored_offset=floor,
                    first_offset=first,
                    reread_by="assignment" if self._rebalancing else "seek",
                )
                if not self._rebalancing:
                    self.consumer.seek(tp, floor)
                    self._rereads[tp] = self._fetches
        return kept

    def _rebalance_began(self) -> None:
        """A seek made before a rebalance proves nothing after it: the new assignment starts anew."""
        self._rebalancing = True
        self._rereads.clear()
        self._pending = []

    async def log_ends(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Each partition's end offset (last stable offset under read_committed), or nothing if the
        broker does not answer in time: the check it serves is then skipped, as before it existed."""
        if not partitions:
            return {}
        try:
            return await asyncio.wait_for(self.consumer.end_offsets(list(partitions)), _LOG_END_TIMEOUT_S)
        except Exception as exc:
            log.warning("consumer.log_ends_unavailable", error=repr(exc))
            return {}

    async def _take_positions(self, assigned: Sequence[TopicPartition]) -> None:
        """Floors and fetch positions of ``assigned`` from the offsets stored in PostgreSQL.

        A stored offset beyond the partition's end means its log is not the one read before (the topic
        was deleted and created again, or an unclean leader election cut it): every record would lie
        below the floor and be dropped. Such a partition is read again from its beginning instead, with
        an error logged, and its stored offset is set back to 0 (else ``GREATEST`` would keep the old
        one, and a later start would skip the new log's records below it); the inbox refuses whatever
        was applied before."""
        stored = await self.load_offsets()
        ends = await self.log_ends([tp for tp in assigned if tp in stored])
        fresh = []
        for tp in assigned:
            offset = stored.get(tp)
            if offset is not None and tp in ends and offset > ends[tp]:
                log.error(
                    "consumer.stored_offset_beyond_log_end",
                    partition=f"{tp.topic}:{tp.partition}",
                    stored_offset=offset,
                    log_end=ends[tp],
                    action="reading the partition again from its beginning",
                )
                await self.reset_stored_offset(tp, offset)
                offset = None
            self._floors[tp] = offset or 0
            if offset is not None:
                self.consumer.seek(tp, offset)
            else:
                fresh.append(tp)
        if fresh:
            await self.consumer.seek_to_beginning(*fresh)

    async def reset_stored_offset(self, tp: TopicPartition, stored: int) -> None:
        """Set a partition's stored offset back to 0, unless someone moved it since it read ``stored``."""
        async with self.engine.begin() as conn:
            await conn.execute(_RESET_OFFSET, {"g": self.group_id, "t": tp.topic, "p": tp.partition, "o": stored})

    async def _settle_pending(self, stop: asyncio.Event) -> None:
        """Take the positions the assignment listener could not (PostgreSQL down or slow), retrying
        with backoff, then resume the paused partitions. A newer assignment supersedes this one."""
        backoff = 0.2
        while self._pending and not stop.is_set():
            pending, assignment = self._pending, self._assignments
            try:
                await self._take_positions(pending)
            except Exception as exc:
                if assignment != self._assignments:
                    continue  # the partitions changed hands meanwhile: the new assignment decides
                if not is_transient(exc):
                    raise
                log.warning("consumer.offsets_unavailable", error=repr(exc), retry_in_s=backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if assignment == self._assignments:
                self.consumer.resume(*pending)
                self._pending = []
                self._rebalancing = False
                self.joined = True
                log.info("consumer.positions_taken", partitions=[f"{t.topic}:{t.partition}" for t in pending])

    async def load_offsets(self) -> dict[TopicPartition, int]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_LOAD_OFFSETS, {"g": self.group_id})).all()
        return {TopicPartition(r.topic, r.partition): r.next_offset for r in rows}

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
                self._report_lag()  # a consumer stuck on its database shows its lag growing
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)

    async def process_records(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply ``records`` as one poll would (public for tests and rebuild tooling)."""
        await self._process([self._decode(r) for r in records])

    def _decode(self, record: ConsumerRecord) -> _Decoded:
        try:
            envelope = parse_envelope(record.value if record.value is not None else b"null")
        except InvalidEvent as exc:
            dead = dead_letter(
                record,
                topic=self.deadletter_topic,
                consumer_group=self.group_id,
                reason=exc.reason,
                detail=str(exc),
                exception=exc,
            )
            return _Decoded(record, None, dead)
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
                    log.warning(
                        "consumer.invalid_event",
                        topic=d.record.topic,
                        partition=d.record.partition,
                        offset=d.record.offset,
                        reason=dict(d.dead.headers).get("dlq_reason"),
                    )
        await write_outbox(conn, dead + outgoing)
        next_offsets: dict[tuple[str, int], int] = {}
        for d in decoded:
            key = (d.record.topic, d.record.partition)
            next_offsets[key] = max(next_offsets.get(key, 0), d.record.offset + 1)
        await conn.execute(
            _SAVE_OFFSETS,
            {
                "g": self.group_id,
                "topics": [t for t, _ in next_offsets],
                "parts": [p for _, p in next_offsets],
                "offs": list(next_offsets.values()),
            },
        )

    async def _advisory_commit(self, batch: dict[TopicPartition, list[_Decoded]]) -> None:
        offsets = {tp: items[-1].record.offset + 1 for tp, items in batch.items() if items}
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:  # advisory only: PostgreSQL holds the truth
            log.debug("consumer.advisory_commit_failed", error=repr(exc))

    def _report_lag(self) -> None:
        """Lag of every partition held, after every poll (an empty one too) and while a batch is retried:
        end offset as last fetched minus the offset stored next. A partition not fetched from yet has no
        end offset, hence no sample; one given up in a rebalance loses its sample (``_forget_lag``).
        Nothing is reported during a rebalance: ``assignment()`` still lists the partitions being given
        up until the new assignment exists."""
        if self._rebalancing:
            return
        for tp in self.consumer.assignment():
            highwater, floor = self.consumer.highwater(tp), self._floors.get(tp)
            if highwater is not None and floor is not None:
                LAG.labels(self.group_id, tp.topic, tp.partition).set(max(0, highwater - floor))
                self._lagging.add(tp)

    def _forget_lag(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in list(partitions):
            self._lagging.discard(tp)
            with contextlib.suppress(KeyError):
                LAG.remove(self.group_id, tp.topic, str(tp.partition))


class _SeekToStoredOffsets(ConsumerRebalanceListener):
    """Positions come from PostgreSQL, not from Kafka's committed offsets."""

    def __init__(self, owner: ProjectionConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Called before every new assignment (with nothing revoked before the first one).
        self.owner._rebalance_began()
        self.owner._forget_lag(revoked)  # the new owner reports them
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
        """Floors and positions of the assigned partitions from PostgreSQL.

        aiokafka hands records out as soon as the new assignment exists, fetched from Kafka's committed
        offsets until the seek below replaces them; floors (set first) and ``_contiguous`` deal with
        those. Floors of revoked partitions are kept: they are never above the stored offsets, so a poll
        fetched before the revocation and applied during the rebalance is still checked against them,
        and a partition that comes back gets its floor from here again.

        aiokafka does not heartbeat while this runs, so it is kept within a third of the session
        timeout: if PostgreSQL does not answer in time, the partitions are paused and the consume loop
        takes their positions once it does (``_settle_pending``); positions never stay Kafka's advisory
        ones, and the consumer has ``joined`` only once they are PostgreSQL's."""
        owner = self.owner
        owner._assignments += 1
        owner._forget_lag(owner._lagging - set(assigned))  # defensive: revocation forgot them already
        try:
            await asyncio.wait_for(owner._take_positions(assigned), owner._listener_budget_s)
        except Exception as exc:
            log.warning("consumer.positions_deferred", error=repr(exc), partitions=len(assigned))
            owner._pending = list(assigned)
            owner.consumer.pause(*assigned)
            owner.joined = False
            return
        owner._rebalancing = False
        owner.joined = True
        log.info(
            "consumer.assigned",
            group=self.owner.group_id,
            partitions=[f"{t.topic}:{t.partition}" for t in assigned],
        )
