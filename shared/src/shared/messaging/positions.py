"""Where a projection consumer reads each partition from, and which fetched records it may apply next.

The offsets stored in PostgreSQL (written in the same transaction as the projection's effects) are the
truth; Kafka's fetch positions follow them. :class:`PartitionPositions` keeps a *floor* per partition —
the offset stored next — and judges every poll against it before the consumer applies anything.

Contiguity: a poll is applied for a partition only from the stored offset on. Records below it were
applied already and are dropped; a poll starting above it would leave a hole, so the partition is sought
back to the stored offset and re-read. Kafka has legitimate gaps too (transaction markers and aborted
transactions under read_committed, retention or compaction below the stored offset): a gap still there
in a poll fetched after that seek is accepted, with a warning — once, never in a loop. Polls are
numbered as their fetches start, so "fetched after that seek" is a comparison of numbers.

Replaced logs: with each stored offset PostgreSQL keeps a fingerprint of the record just before it (the
last one applied, see :func:`fingerprint`). On assignment such a partition is sought to that record
instead of the stored offset, and nothing of it is applied until the record is compared: the same
record → the partition is read on as before; another one → its log was replaced (the topic deleted and
created again...) even though it is already longer than the stored offset, and it is read again from its
beginning. A record gone (retention, compaction: the first one returned lies at or above the stored
offset) is accepted unverified; only a poll fetched after the seek may verify or accept.

Rebalances: on assignment the floors and fetch positions are taken from PostgreSQL. aiokafka does not
heartbeat while its rebalance listener runs, so a database that does not answer in time leaves the
partitions paused, and the consume loop takes their positions once it does: they are never Kafka's
advisory ones. A rebalance also forgets the seeks made before it, and the lag of partitions given up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from hashlib import blake2b
from typing import NamedTuple, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Gauge
from structlog.stdlib import BoundLogger

from shared.messaging.transient import is_transient

LAG = Gauge(
    "tierstream_consumer_lag",
    "Records not yet applied: the partition's end offset (as last fetched) minus the offset stored next",
    ["group", "topic", "partition"],
)

#: How long an assignment waits for the partitions' end offsets (see ``take_positions``).
_LOG_END_TIMEOUT_S = 2.0


def fingerprint(record: ConsumerRecord) -> int:
    """An 8-byte blake2b of a record's key and value, as a signed 64-bit integer (a BIGINT column).

    Computed once per partition per batch (its last record), so its cost is a hash of one record. The
    key and value rather than the ``event_id`` header: every record has them, an invalid one too (a dead
    letter moves the offset like any record), and the value holds the envelope, event_id included."""
    digest = blake2b(digest_size=8)
    for part in (record.key, record.value):
        digest.update(b"\xff" if part is None else len(part).to_bytes(4, "big"))  # None ≠ empty; no ambiguity
        digest.update(part or b"")
    return int.from_bytes(digest.digest(), "big", signed=True)


class StoredOffset(NamedTuple):
    """A partition's row: the offset stored next and the fingerprint of the record before it (None:
    stored before fingerprints were kept, or set back to 0)."""

    next_offset: int
    fingerprint: int | None = None


class _Verification(NamedTuple):
    """A partition sought to the record before its stored offset, to compare it with the one stored."""

    fingerprint: int
    sought: int  # fetches started when it was sought (a poll numbered above was fetched after the seek)
    stored: int  # the stored offset loaded (the record compared is the one before it)


class StoredOffsets(Protocol):
    """The offsets stored next per partition, kept with the projection's effects (the consumer's table)."""

    async def load_offsets(self) -> dict[TopicPartition, StoredOffset]: ...

    async def reset_stored_offset(self, tp: TopicPartition, stored: int) -> None:
        """Set ``tp``'s stored offset (and fingerprint) back to 0 (and none), unless someone moved it
        since it read ``stored``."""
        ...


class Fetched(Protocol):
    """A fetched record with whatever its reader made of it (the consumer's decoded records)."""

    @property
    def record(self) -> ConsumerRecord: ...


F = TypeVar("F", bound=Fetched)


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


class PartitionPositions:
    """Floors, re-reads, deferred positions and lag of the partitions one consumer holds.

    ``kafka`` is the consumer's client (sought, paused and resumed here); ``store`` holds the offsets;
    ``log`` gives the logger to write to, looked up at each line: the consumer's, so that these lines
    keep its name, and replacing the consumer module's ``log`` (as its unit tests do) catches them too.
    """

    def __init__(
        self, kafka: AIOKafkaConsumer, store: StoredOffsets, *, group_id: str, log: Callable[[], BoundLogger]
    ) -> None:
        self.kafka = kafka
        self.store = store
        self.group_id = group_id
        self._log = log
        #: next offset per partition as stored in PostgreSQL (set on assignment, raised per batch)
        self.floors: dict[TopicPartition, int] = {}
        #: fetches started so far (a poll numbered above the count at a seek was fetched after it)
        self._fetches = 0
        #: partitions sought back to their floor over a gap → ``_fetches`` at that seek
        self._rereads: dict[TopicPartition, int] = {}
        #: partitions sought to the record before their stored offset on assignment, nothing of them applied
        #: until it is compared; see ``verified``
        self._verifying: dict[TopicPartition, _Verification] = {}
        #: partitions whose record before the floor differed → the stored offset it was compared at (read
        #: again from the beginning by ``take_positions``, through ``pending``)
        self._replaced: dict[TopicPartition, int] = {}
        #: from a rebalance's revocation to the end of its assignment (and before the first one), when
        #: positions change behind the consumer's back
        self.rebalancing = True
        #: assignments so far, and the partitions of the latest whose positions are still to be taken from
        #: PostgreSQL (paused meanwhile: the listener could not load them, see ``settle_pending``)
        self._assignments = 0
        self.pending: list[TopicPartition] = []
        #: the partitions of the assignment whose positions the listener is taking right now (see
        #: ``still_assigned``)
        self._taking: frozenset[TopicPartition] = frozenset()
        #: partitions with a lag sample from this consumer (removed when given up)
        self._lagging: set[TopicPartition] = set()
        #: True while the consumer holds an assignment (possibly empty: a standby replica beyond the
        #: partition count) whose positions it took from PostgreSQL
        self.joined = False

    @property
    def log(self) -> BoundLogger:
        return self._log()

    # -- polls ----------------------------------------------------------------------------------
    def fetch_started(self) -> int:
        """Number the fetch that starts now: 1 for the consumer's first, 2 for the next... (fetches are
        sequential, so a poll numbered above the count at a seek was fetched after that seek)."""
        self._fetches += 1
        return self._fetches

    def applicable(self, fetched: dict[TopicPartition, list[F]], poll_number: int) -> dict[TopicPartition, list[F]]:
        """The part of poll ``poll_number`` that may be applied now: partitions still held, records from
        the floor on, without a hole (judged when the poll's turn comes, not when it was fetched), of
        partitions whose stored offset was verified (or could not be)."""
        kept = self.verified(self.still_assigned(fetched), poll_number)
        return self.contiguous(self.at_or_above_floor(kept), poll_number)

    def still_assigned(self, fetched: dict[TopicPartition, list[F]]) -> dict[TopicPartition, list[F]]:
        """Drop records of partitions revoked while they waited (their new owner reads them).

        ``assignment()`` still lists a partition during a rebalance that hands it straight back to this
        consumer; keep it so. Dropping such a poll (tried with an "owned" set emptied on revocation) lost
        events: a later poll could still come from the old position, above the stored offset, and be
        applied, leaving a gap (seen in the SIGKILL fault test; ``contiguous`` now refuses such a poll,
        but every drop costs a re-read). A poll kept for a partition that does move away is applied at
        most once anyway: the inbox refuses what its new owner applies too.

        Records of partitions whose positions are not PostgreSQL's yet are dropped: those the listener is
        taking now and those it left ``pending``. aiokafka makes an assignment live, and fetches from
        Kafka's committed offsets, *before* it awaits the listener; a poll judged while the listener waits
        for PostgreSQL would be checked against no floor (or the one from before the rebalance, which
        another member may have moved past since) and apply records below the stored offset — twice in
        effect once the inbox no longer holds them. The listener's seek then re-reads from the stored
        offset; a poll fetched after that seek but dropped here only costs a re-read (``contiguous``)."""
        assigned = self.kafka.assignment() - set(self.pending) - self._taking
        kept = {tp: items for tp, items in fetched.items() if tp in assigned}
        if len(kept) < len(fetched):
            self.log.info("consumer.dropped_revoked", partitions=[_name(t) for t in fetched if t not in kept])
        return kept

    def verified(self, fetched: dict[TopicPartition, list[F]], poll_number: int) -> dict[TopicPartition, list[F]]:
        """Drop the records of partitions whose stored offset is not verified yet; verify it with this poll.

        A partition sought to the record before its floor (``take_positions``) is judged by the first poll
        fetched after that seek that reaches it — not by one fetched before (from Kafka's committed
        offset: it proves nothing about where the seek reads; the partition is sought again, as
        ``contiguous`` does), nor during a rebalance (the assignment's seek will be the one). That record
        equal to the one stored → verified, the poll goes on (the record itself lies below the floor).
        Another record → the log was replaced: error logged, nothing applied, and the partition is paused
        and read again from its beginning (``pending``: ``settle_pending`` → ``take_positions``, as a
        stored offset beyond the log's end is). No record there (the first one lies at or above the floor:
        retention or compaction removed it) → accepted unverified."""
        if not self._verifying:
            return fetched
        kept: dict[TopicPartition, list[F]] = {}
        for tp, records in fetched.items():
            if tp not in self._verifying:
                kept[tp] = records
                continue
            expected, sought, stored = self._verifying[tp]
            if self.rebalancing:
                continue  # nothing applied: the assignment's seek will be read
            if self.floors.get(tp, 0) != stored:
                # A batch read before the rebalance committed after the offsets were loaded (a revocation
                # waits for it only so long): its records came from the log as it is, so that log is
                # the one the stored offset belongs to; comparing its fingerprint with the record before
                # the *loaded* offset would report a replaced log that is not.
                del self._verifying[tp]
                kept[tp] = records
                continue
            if poll_number <= sought:
                # Fetched before the seek, or with a number taken before it (aiokafka's getmany waits for
                # the assignment, and its listener, inside a fetch already numbered): sought again, so
                # that the record is read again — else these records, dropped, would be read no more.
                self.kafka.seek(tp, stored - 1)
                self._verifying[tp] = _Verification(expected, self._fetches, stored)
                continue
            at = next((d.record for d in records if d.record.offset >= stored - 1), None)
            if at is None:
                continue  # still below the record to compare (all of them below the floor too)
            del self._verifying[tp]
            if at.offset >= stored:
                self.log.info("consumer.record_before_stored_offset_gone", partition=_name(tp), stored_offset=stored)
            elif fingerprint(at) == expected:
                self.log.debug("consumer.stored_offset_verified", partition=_name(tp), stored_offset=stored)
            else:
                self.log.error(
                    "consumer.record_before_stored_offset_differs",
                    partition=_name(tp),
                    stored_offset=stored,
                    action="reading the partition again from its beginning",
                )
                self._replaced[tp] = stored
                self.pending.append(tp)
                self.kafka.pause(tp)
                continue
            kept[tp] = records
        return kept

    def at_or_above_floor(self, batch: dict[TopicPartition, list[F]]) -> dict[TopicPartition, list[F]]:
        """Drop records below the offset PostgreSQL says comes next.

        A fetch can start from Kafka's (advisory) committed offset before the seek made on assignment
        takes effect; whatever such a fetch returns below the stored offset was already applied.
        """
        kept: dict[TopicPartition, list[F]] = {}
        for tp, records in batch.items():
            floor = self.floors.get(tp, 0)
            fresh = [d for d in records if d.record.offset >= floor]
            if len(fresh) < len(records):
                self.log.info(
                    "consumer.skipped_below_stored_offset",
                    partition=_name(tp),
                    records=len(records) - len(fresh),
                    stored_offset=floor,
                )
            if fresh:
                kept[tp] = fresh
        return kept

    def contiguous(self, batch: dict[TopicPartition, list[F]], poll_number: int) -> dict[TopicPartition, list[F]]:
        """Keep the partitions whose records start at the floor; seek the others back to it.

        ``batch`` is poll ``poll_number``'s records at or above the floor. One starting above it would
        leave a hole (a poll fetched from a stale position, e.g. after an earlier poll was dropped), so it
        is not applied and the partition is re-read from the floor. The proof that a gap is real (see the
        module docstring) is a poll fetched after that seek — numbered above the fetches started before
        it — with no rebalance since (a rebalance forgets the seek). During a rebalance nothing is
        sought: the assignment's own seek to the stored offsets is the re-read.

        On aiokafka's side, ``seek`` drops the records it buffered for the partition and discards fetch
        responses for another position, so ``getmany`` after a seek returns nothing fetched before it;
        what a poll already returned is this method's to refuse.
        """
        kept: dict[TopicPartition, list[F]] = {}
        for tp, records in batch.items():
            floor, first = self.floors.get(tp, 0), records[0].record.offset
            sought = self._rereads.pop(tp, None)
            if first == floor:
                kept[tp] = records
            elif sought is not None and poll_number > sought:
                self.log.warning("consumer.gap_accepted", partition=_name(tp), stored_offset=floor, first_offset=first)
                kept[tp] = records
            else:
                self.log.info(
                    "consumer.gap_not_applied",
                    partition=_name(tp),
                    stored_offset=floor,
                    first_offset=first,
                    reread_by="assignment" if self.rebalancing else "seek",
                )
                if not self.rebalancing:
                    self.kafka.seek(tp, floor)
                    self._rereads[tp] = self._fetches
        return kept

    def advance(self, batch: dict[TopicPartition, list[F]]) -> None:
        """Raise the floors past ``batch``, whose transaction (offsets included) has committed."""
        for tp, items in batch.items():
            self.floors[tp] = items[-1].record.offset + 1

    # -- rebalances -----------------------------------------------------------------------------
    def begin_rebalance(self, revoked: Iterable[TopicPartition]) -> None:
        """A rebalance starts (before every assignment, the first one too) and ``revoked`` are given up.

        A seek made before it proves nothing after it: the new assignment starts anew. The partitions
        given up lose their lag sample (the new owner reports them). Their floors are kept: they are never
        above the stored offsets, so a poll fetched before the revocation and applied during the
        rebalance is still checked against them, and a partition that comes back gets its floor anew.
        So are the partitions still to be verified (``verified``): nothing of them is applied during the
        rebalance either, and the new assignment verifies them anew (or forgets those given up)."""
        self.rebalancing = True
        self._rereads.clear()
        self._replaced.clear()
        self.pending = []
        self.forget_lag(revoked)

    async def end_rebalance(self, assigned: Sequence[TopicPartition], *, within_s: float) -> None:
        """Floors and positions of the ``assigned`` partitions from PostgreSQL, within ``within_s``.

        aiokafka hands records out as soon as the new assignment exists, fetched from Kafka's committed
        offsets until the seek here replaces them: ``still_assigned`` drops them while the positions are
        being taken, the floors and ``contiguous`` whatever of them is judged later.

        aiokafka does not heartbeat while its listener runs, hence the time limit: if PostgreSQL does not
        answer in time, the partitions are paused and the consume loop takes their positions once it
        does (``settle_pending``); the consumer has ``joined`` only once they are PostgreSQL's."""
        self._assignments += 1
        self.forget_lag(self._lagging - set(assigned))  # defensive: revocation forgot them already
        for tp in set(self._verifying) - set(assigned):
            del self._verifying[tp]  # given up: its new owner verifies it
        self._taking = frozenset(assigned)
        try:
            await asyncio.wait_for(self.take_positions(assigned), within_s)
        except Exception as exc:
            self.log.warning("consumer.positions_deferred", error=repr(exc), partitions=len(assigned))
            self.pending = list(assigned)
            self.kafka.pause(*assigned)
            self.joined = False
            return
        finally:
            self._taking = frozenset()
        self.rebalancing = False
        self.joined = True
        self.log.info("consumer.assigned", group=self.group_id, partitions=[_name(t) for t in assigned])

    async def settle_pending(self, stop: asyncio.Event) -> None:
        """Take the positions the assignment listener could not (PostgreSQL down or slow), retrying
        with backoff, then resume the paused partitions. A newer assignment supersedes this one."""
        backoff = 0.2
        while self.pending and not stop.is_set():
            pending, assignment = self.pending, self._assignments
            try:
                await self.take_positions(pending)
            except Exception as exc:
                if assignment != self._assignments:
                    continue  # the partitions changed hands meanwhile: the new assignment decides
                if not is_transient(exc):
                    raise
                self.log.warning("consumer.offsets_unavailable", error=repr(exc), retry_in_s=backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if assignment == self._assignments:
                self.kafka.resume(*pending)
                self.pending = []
                self.rebalancing = False
                self.joined = True
                self.log.info("consumer.positions_taken", partitions=[_name(t) for t in pending])

    async def take_positions(self, assigned: Sequence[TopicPartition]) -> None:
        """Floors and fetch positions of ``assigned`` from the offsets stored in PostgreSQL.

        A partition whose row has a fingerprint is sought to the record before its stored offset, to be
        compared (``verified``); one without (stored before fingerprints were kept) to the stored offset.

        A stored offset beyond the partition's end means its log is not the one read before (the topic
        was deleted and created again, or an unclean leader election cut it): every record would lie
        below the floor and be dropped. Such a partition is read again from its beginning instead, with
        an error logged, and its stored offset is set back to 0 (else ``GREATEST`` would keep the old
        one, and a later start would skip the new log's records below it); the inbox refuses whatever
        was applied before. So is a partition whose record before the stored offset differed from the
        one stored (``verified`` logged it), as long as its stored offset is still the one compared."""
        stored = await self.store.load_offsets()
        ends = await self.log_ends([tp for tp in assigned if tp in stored])
        rows: dict[TopicPartition, StoredOffset | None] = {}
        for tp in assigned:
            row, replaced = stored.get(tp), self._replaced.pop(tp, None)
            if row is not None and tp in ends and row.next_offset > ends[tp]:
                self.log.error(
                    "consumer.stored_offset_beyond_log_end",
                    partition=_name(tp),
                    stored_offset=row.next_offset,
                    log_end=ends[tp],
                    action="reading the partition again from its beginning",
                )
                replaced = row.next_offset
            if row is not None and replaced == row.next_offset:
                await self.store.reset_stored_offset(tp, row.next_offset)
                row = None
            rows[tp] = row
        # No await from here on: floors, seeks and the end of the rebalance happen at once. A poll judged
        # between a seek and the end of ``_taking`` / ``rebalancing`` would be dropped although fetched
        # from the new position, and nothing would read those records again on a quiet partition.
        for tp, row in rows.items():
            self._verifying.pop(tp, None)
            if row is None:  # offset 0 → the log's first record (auto_offset_reset="earliest" when cut)
                self.floors[tp] = 0
                self.kafka.seek(tp, 0)
            elif row.fingerprint is None or row.next_offset == 0:
                self.floors[tp] = row.next_offset
                self.kafka.seek(tp, row.next_offset)
            else:
                self.floors[tp] = row.next_offset
                self.kafka.seek(tp, row.next_offset - 1)
                self._verifying[tp] = _Verification(row.fingerprint, self._fetches, row.next_offset)
        self._taking = self._taking.difference(assigned)
        self.rebalancing = False

    async def log_ends(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Each partition's end offset (last stable offset under read_committed), or nothing if the
        broker does not answer in time: the check it serves is then skipped, as before it existed."""
        if not partitions:
            return {}
        try:
            return await asyncio.wait_for(self.kafka.end_offsets(list(partitions)), _LOG_END_TIMEOUT_S)
        except Exception as exc:
            self.log.warning("consumer.log_ends_unavailable", error=repr(exc))
            return {}

    # -- lag ------------------------------------------------------------------------------------
    def report_lag(self) -> None:
        """Lag of every partition held, after every poll (an empty one too) and while a batch is retried:
        end offset as last fetched minus the offset stored next. A partition not fetched from yet has no
        end offset, hence no sample; one given up in a rebalance loses its sample (``forget_lag``).
        Nothing is reported during a rebalance: ``assignment()`` still lists the partitions being given
        up until the new assignment exists."""
        if self.rebalancing:
            return
        for tp in self.kafka.assignment():
            highwater, floor = self.kafka.highwater(tp), self.floors.get(tp)
            if highwater is not None and floor is not None:
                LAG.labels(self.group_id, tp.topic, tp.partition).set(max(0, highwater - floor))
                self._lagging.add(tp)

    def forget_lag(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in list(partitions):
            self._lagging.discard(tp)
            with contextlib.suppress(KeyError):
                LAG.remove(self.group_id, tp.topic, str(tp.partition))
