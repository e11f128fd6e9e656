"""The shared consumer never applies a poll that starts above the stored offset of its partition.

A fake stands in for AIOKafkaConsumer (one partition's log and fetch position, no broker) and the
database step is replaced by a recorder of the applied offsets, so what is left is the real loop: its
prefetch, its filters, its seeks and the rebalance listener's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

import shared.messaging.consumer as consumer_module
from shared.messaging.consumer import ProjectionConsumer
from shared.messaging.positions import StoredOffset, fingerprint
from shared.testing.events import customer_registered

pytestmark = pytest.mark.unit

TOPIC = "t.customers"
TP = TopicPartition(TOPIC, 0)


def value(offset: int) -> bytes:
    return customer_registered(f"c-{offset}").to_json()


class FakeKafka:
    """One partition's log (the offsets present: Kafka's gaps are the ones missing) and a fetch position.

    ``getmany`` serves from the position, as a broker would, at most ``chunk`` records (one fetch response:
    a poll tops itself up with a second getmany); ``behind_the_back``
    maps a getmany call's index to a position change made just before it (a fetch from a stale position,
    a rebalance's seek). After two empty polls in a row everything fetched has been filtered and applied,
    and ``drained`` is set. Each offset holds one record, the same on every fetch, until ``replace_log``.
    """

    chunk = 3

    def __init__(
        self,
        offsets: Iterable[int],
        stop: asyncio.Event,
        behind_the_back: dict[int, int] | None = None,
        *,
        join_in_getmany: bool = False,
    ):
        self.log = sorted(offsets)
        self.records = {o: record(o) for o in self.log}
        self.assigned = {TP}
        self.drained = stop
        self.behind_the_back = behind_the_back or {}
        self.position: int | None = None
        self.seeks: list[int] = []
        self.calls = 0
        self.empty_polls = 0
        self.listener: ConsumerRebalanceListener | None = None
        self.paused: set[TopicPartition] = set()
        #: as aiokafka does: ``start`` does not wait for the group, the first getmany waits for the
        #: assignment (and its listener) inside a fetch the consumer has numbered already
        self.join_in_getmany = join_in_getmany

    def replace_log(self, offsets: Iterable[int]) -> None:
        """The topic is deleted and created again: new records (new event ids) under the offsets."""
        self.log = sorted(offsets)
        self.records = {o: record(o) for o in self.log}

    def subscribe(self, topics: Sequence[str], listener: ConsumerRebalanceListener) -> None:
        self.listener = listener

    async def start(self) -> None:
        if not self.join_in_getmany:
            await self.join()

    async def join(self) -> None:
        assert self.listener is not None
        await self.listener.on_partitions_revoked(set())
        await self.listener.on_partitions_assigned(self.assigned)

    async def stop(self) -> None:
        return None

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp != TP:
            return  # another partition of the assignment (one with no log here)
        self.seeks.append(offset)
        self.position = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.position = self.log[0]

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        if self.join_in_getmany:
            self.join_in_getmany = False
            await self.join()
        if TP in self.paused:
            await asyncio.sleep(0)
            return {}
        if self.calls in self.behind_the_back:
            self.position = self.behind_the_back[self.calls]
        self.calls += 1
        await asyncio.sleep(0)
        assert self.position is not None
        offsets = [o for o in self.log if o >= self.position][: min(self.chunk, max_records or self.chunk)]
        if timeout_ms:  # the first getmany of a poll (a top-up does not wait)
            self.empty_polls = 0 if offsets else self.empty_polls + 1
            if self.empty_polls == 2:
                self.drained.set()
        if not offsets:
            return {}
        self.position = offsets[-1] + 1
        return {TP: [self.records[o] for o in offsets]}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        return None

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.log[-1] + 1 for tp in partitions}

    def highwater(self, tp: TopicPartition) -> int:
        assert tp in self.assigned, "Partition is not assigned"  # as aiokafka does
        return self.log[-1] + 1


def record(offset: int) -> ConsumerRecord[bytes, bytes]:
    v = value(offset)
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, f"c-{offset}".encode(), v, None, 1, len(v), ())


def projection_consumer(kafka: FakeKafka, monkeypatch: pytest.MonkeyPatch, *, batch_size: int) -> ProjectionConsumer:
    """A ProjectionConsumer built on ``kafka``; its engine and projection are never reached here."""
    monkeypatch.setattr(consumer_module, "AIOKafkaConsumer", lambda **options: kafka)
    return ProjectionConsumer(
        object(),  # type: ignore[arg-type]
        object(),  # type: ignore[arg-type]
        bootstrap_servers="127.0.0.1:1",
        group_id="g",
        topics=[TOPIC],
        deadletter_topic="t.deadletter",
        batch_size=batch_size,
    )


class FakeStore:
    """The consumer's stored offset row for ``TP`` (``StoredOffsets``), reset with its compare-and-set."""

    def __init__(self, stored: int, fingerprint: int | None = None) -> None:
        self.row = StoredOffset(stored, fingerprint)
        self.resets: list[tuple[TopicPartition, int]] = []

    async def load_offsets(self) -> dict[TopicPartition, StoredOffset]:
        return {TP: self.row}

    async def reset_stored_offset(self, tp: TopicPartition, stored: int) -> None:
        self.resets.append((tp, stored))
        if self.row.next_offset == stored:
            self.row = StoredOffset(0, None)


def use_store(consumer: ProjectionConsumer, store: FakeStore) -> None:
    consumer.load_offsets = store.load_offsets  # type: ignore[method-assign]
    consumer.reset_stored_offset = store.reset_stored_offset  # type: ignore[method-assign]


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        return lambda event, **kw: self.lines.append((level, event, kw))


async def consume(
    offsets: Iterable[int],
    *,
    stored: int | FakeStore,
    monkeypatch: pytest.MonkeyPatch,
    behind_the_back: dict[int, int] | None = None,
    batch_size: int = 5,
    stored_from_this_log: bool = False,
    join_in_getmany: bool = False,
) -> tuple[list[int], FakeKafka, RecordingLog]:
    """Run the consumer over the fake log until it is drained; return the applied offsets in order.

    ``stored``: the offset stored for the partition (no fingerprint), or the store holding its row;
    ``stored_from_this_log``: the row's fingerprint is that of this log's record before its offset."""
    stop = asyncio.Event()
    kafka = FakeKafka(offsets, stop, behind_the_back, join_in_getmany=join_in_getmany)
    consumer = projection_consumer(kafka, monkeypatch, batch_size=batch_size)
    applied: list[int] = []
    store = stored if isinstance(stored, FakeStore) else FakeStore(stored)
    if stored_from_this_log:
        store.row = StoredOffset(store.row.next_offset, fingerprint(kafka.records[store.row.next_offset - 1]))
    use_store(consumer, store)

    async def process(decoded: Sequence[Any]) -> None:
        applied.extend(d.record.offset for d in decoded)

    monkeypatch.setattr(consumer, "_process", process)
    recording = RecordingLog()
    monkeypatch.setattr(consumer_module, "log", recording)
    await asyncio.wait_for(consumer.run(stop), 10)  # a guard against a loop, not a speed check
    return applied, kafka, recording


def accepted_gaps(log: RecordingLog) -> list[dict[str, Any]]:
    return [kw for level, event, kw in log.lines if event == "consumer.gap_accepted" and level == "warning"]


async def test_a_contiguous_stream_is_applied_once_without_any_extra_seek(monkeypatch: pytest.MonkeyPatch) -> None:
    applied, kafka, log = await consume(range(12), stored=3, monkeypatch=monkeypatch)
    assert applied == list(range(3, 12))
    assert kafka.seeks == [3]  # the assignment's
    assert accepted_gaps(log) == []


async def test_a_poll_starting_above_the_stored_offset_is_not_applied_and_the_partition_is_reread_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first fetch comes from a stale position (10) although PostgreSQL says 5 comes next: applying
    # it would leave 5..9 out for good.
    applied, kafka, log = await consume(range(20), stored=5, monkeypatch=monkeypatch, behind_the_back={0: 10})
    assert applied == list(range(5, 20))
    assert kafka.seeks == [5, 5]  # the assignment's, then the re-read's
    assert accepted_gaps(log) == []


async def test_a_gap_still_there_when_reread_is_accepted_after_one_verification_and_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Offsets 5..7 do not exist (transaction markers, an aborted transaction, retention...).
    log_offsets = [*range(5), *range(8, 16)]
    applied, kafka, log = await consume(log_offsets, stored=5, monkeypatch=monkeypatch)
    assert applied == list(range(8, 16))
    assert kafka.seeks == [5, 5]  # one verification, no loop
    assert accepted_gaps(log) == [{"partition": f"{TOPIC}:0", "stored_offset": 5, "first_offset": 8}]


async def test_a_poll_whose_top_up_jumps_ahead_is_cut_and_the_rest_reread(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first getmany of a poll returns 0..2; before the top-up the position jumps to 8 (as after a
    # rebalance that getmany waited out): 3..7 must not be skipped.
    applied, _, log = await consume(range(12), stored=0, monkeypatch=monkeypatch, behind_the_back={1: 8})
    assert sorted(set(applied)) == list(range(12))
    assert len(applied) == len(set(applied))
    assert accepted_gaps(log) == []


async def test_records_cut_from_a_top_up_are_fetched_again_even_when_nothing_follows_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As above, but the top-up (8, 9: a poll of 5 holds 0..2 and two more) ends the log: no later poll
    # would start above the floor and trigger a re-read, so the cut itself must put the position back.
    applied, _, log = await consume(range(10), stored=0, monkeypatch=monkeypatch, behind_the_back={1: 8})
    assert sorted(set(applied)) == list(range(10))
    assert len(applied) == len(set(applied))
    assert accepted_gaps(log) == []


# -- the filter on its own: which poll may prove a gap ------------------------------------------------
def bare_consumer(monkeypatch: pytest.MonkeyPatch) -> tuple[ProjectionConsumer, FakeKafka]:
    """A consumer assigned the partition (floor 5, position 5) of a log without offsets 5..7."""
    kafka = FakeKafka([*range(5), *range(8, 16)], asyncio.Event())
    kafka.position = 5
    consumer = projection_consumer(kafka, monkeypatch, batch_size=3)
    consumer.positions.floors[TP] = 5
    consumer.positions.rebalancing = False
    return consumer, kafka


def offsets_of(batch: dict[TopicPartition, list[Any]]) -> list[int]:
    return [d.record.offset for d in batch.get(TP, [])]


def keep(consumer: ProjectionConsumer, poll: Any) -> list[int]:
    return offsets_of(consumer.positions.contiguous(consumer.positions.at_or_above_floor(poll.records), poll.number))


async def test_a_poll_prefetched_before_the_seek_does_not_count_as_the_reread(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer, kafka = bare_consumer(monkeypatch)
    first, prefetched = await consumer._fetch(), await consumer._fetch()  # 8..10 and 11..13, both before any seek
    assert keep(consumer, first) == []
    assert kafka.seeks == [5]
    assert keep(consumer, prefetched) == []  # above the floor, and no proof: it was fetched before the seek
    fresh = await consumer._fetch()
    assert keep(consumer, fresh) == [8, 9, 10]


async def test_a_poll_fetched_across_a_rebalance_does_not_count_as_the_reread(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer, kafka = bare_consumer(monkeypatch)
    listener = consumer_module._SeekToStoredOffsets(consumer)
    assert keep(consumer, await consumer._fetch()) == []  # 8..10: sought back to 5
    await listener.on_partitions_revoked([TP])
    kafka.position = 11  # the new assignment starts from Kafka's committed offset until the listener seeks
    during = await consumer._fetch()
    assert keep(consumer, during) == []  # fetched after the seek, but the rebalance forgot it
    assert kafka.seeks == [5]  # and nothing is sought mid-rebalance: the assignment's seek is the re-read

    async def load_offsets() -> dict[TopicPartition, StoredOffset]:
        return {TP: StoredOffset(5)}

    consumer.load_offsets = load_offsets  # type: ignore[method-assign]
    await listener.on_partitions_assigned([TP])
    assert kafka.seeks == [5, 5]
    assert keep(consumer, await consumer._fetch()) == []  # 8..10 after the assignment's seek: verified anew
    assert kafka.seeks == [5, 5, 5]
    assert keep(consumer, await consumer._fetch()) == [8, 9, 10]


async def test_a_poll_judged_while_the_listener_takes_positions_applies_nothing_of_those_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiokafka makes an assignment live, fetching from Kafka's committed offsets, before it awaits the
    listener: a poll judged while the listener waits for PostgreSQL has no floor to be checked against, and
    applying it would apply 0..2 again although the stored offset says 5 comes next."""
    kafka = FakeKafka(range(12), asyncio.Event())
    kafka.position = 0  # Kafka's committed offset for the group (none: from the beginning)
    consumer = projection_consumer(kafka, monkeypatch, batch_size=3)
    listener = consumer_module._SeekToStoredOffsets(consumer)
    database_answers = asyncio.Event()

    async def load_offsets() -> dict[TopicPartition, StoredOffset]:
        await database_answers.wait()
        return {TP: StoredOffset(5)}

    consumer.load_offsets = load_offsets  # type: ignore[method-assign]
    await listener.on_partitions_revoked([])
    assigning = asyncio.create_task(listener.on_partitions_assigned([TP]))
    await asyncio.sleep(0)
    early = await consumer._fetch()
    assert offsets_of(early.records) == [0, 1, 2]
    assert offsets_of(consumer.positions.applicable(early.records, early.number)) == []
    database_answers.set()
    await assigning
    assert kafka.seeks == [5]
    fresh = await consumer._fetch()
    assert offsets_of(consumer.positions.applicable(fresh.records, fresh.number)) == [5, 6, 7]


async def test_a_partition_given_up_keeps_no_lag_sample_even_if_a_batch_finishes_during_the_rebalance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, kafka = bare_consumer(monkeypatch)  # floor 5; the log ends at 15
    listener = consumer_module._SeekToStoredOffsets(consumer)
    labels = {"group": "g", "topic": TOPIC, "partition": "0"}
    consumer.positions.report_lag()
    assert REGISTRY.get_sample_value("tierstream_consumer_lag", labels) == 16 - 5
    await listener.on_partitions_revoked([TP])
    consumer.positions.report_lag()  # the batch in flight ends: aiokafka's assignment() still lists the partition
    assert REGISTRY.get_sample_value("tierstream_consumer_lag", labels) is None

    async def load_offsets() -> dict[TopicPartition, StoredOffset]:
        return {}

    consumer.load_offsets = load_offsets  # type: ignore[method-assign]
    kafka.assigned = set()  # the partition moved to another replica
    await listener.on_partitions_assigned([])
    consumer.positions.report_lag()
    assert REGISTRY.get_sample_value("tierstream_consumer_lag", labels) is None  # its new owner reports it


async def test_the_consumer_has_joined_once_its_first_assignment_is_done_even_an_empty_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the consume role's readiness reports: a standby replica (no partition) has joined too."""
    consumer, _ = bare_consumer(monkeypatch)
    listener = consumer_module._SeekToStoredOffsets(consumer)

    async def load_offsets() -> dict[TopicPartition, StoredOffset]:
        return {}

    consumer.load_offsets = load_offsets  # type: ignore[method-assign]
    assert consumer.joined is False
    await listener.on_partitions_revoked([])
    assert consumer.joined is False
    await listener.on_partitions_assigned([])
    assert consumer.joined is True


async def test_lag_is_reported_for_every_partition_held_and_forgotten_when_it_is_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, _ = bare_consumer(monkeypatch)  # floor 5; the log ends at 15
    labels = {"group": "g", "topic": TOPIC, "partition": "0"}
    consumer.positions.report_lag()  # what the loop does after every poll, an empty one too
    assert REGISTRY.get_sample_value("tierstream_consumer_lag", labels) == 16 - 5
    consumer.positions.floors[TP] = 12
    consumer.positions.report_lag()
    assert REGISTRY.get_sample_value("tierstream_consumer_lag", labels) == 16 - 12
    await consumer_module._SeekToStoredOffsets(consumer).on_partitions_revoked([TP])
    assert REGISTRY.get_sample_value("tierstream_consumer_lag", labels) is None  # its new owner reports it


async def test_a_partition_whose_log_ends_below_the_stored_offset_is_read_again_from_its_beginning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The group stored 50, but the topic was deleted and created again: its log now holds 0..9. Kept as
    # the floor, 50 would drop every one of them for good; the inbox refuses what was applied before.
    store = FakeStore(50)
    applied, _, log = await consume(range(10), stored=store, monkeypatch=monkeypatch)
    assert applied == list(range(10))
    errors = [kw for level, event, kw in log.lines if event == "consumer.stored_offset_beyond_log_end"]
    assert len(errors) == 1 and (errors[0]["stored_offset"], errors[0]["log_end"]) == (50, 10)
    # else the stored 50 would outlive the new log's first 50 records (offsets are saved with GREATEST)
    assert store.resets == [(TP, 50)] and store.row == StoredOffset(0)


# -- the record before the stored offset: a replaced log longer than the stored offset ----------------
def events(log: RecordingLog, name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(level, kw) for level, event, kw in log.lines if event == name]


async def test_a_partition_whose_record_before_the_stored_offset_is_the_one_stored_is_read_on_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore(5)
    applied, kafka, log = await consume(range(12), stored=store, stored_from_this_log=True, monkeypatch=monkeypatch)
    assert applied == list(range(5, 12))
    assert kafka.seeks == [4]  # the record before the stored offset, to compare it
    assert store.resets == [] and events(log, "consumer.record_before_stored_offset_differs") == []
    assert accepted_gaps(log) == []


async def test_a_partition_verified_in_a_fetch_numbered_before_the_seek_is_read_again_and_verified_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # aiokafka's first getmany waits for the assignment inside a fetch numbered before the seek: its
    # records (4, 5, 6) prove nothing, and dropped without a seek they would never be read again.
    store = FakeStore(5)
    applied, kafka, log = await consume(
        range(12), stored=store, stored_from_this_log=True, join_in_getmany=True, monkeypatch=monkeypatch
    )
    assert applied == list(range(5, 12))
    assert kafka.seeks == [4, 4]
    assert store.resets == [] and events(log, "consumer.record_before_stored_offset_differs") == []


async def test_a_replaced_log_longer_than_the_stored_offset_is_read_again_from_its_beginning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The group stored 5 (and the fingerprint of the record at 4) from a log since deleted and created
    # again; the new one already holds 0..11. Offsets alone would skip its 0..4 for good.
    store = FakeStore(5, fingerprint(record(4)))  # a record of the old log: another event id
    applied, kafka, log = await consume(range(12), stored=store, monkeypatch=monkeypatch)
    assert applied == list(range(12))
    assert kafka.seeks == [4, 0]  # the record before the stored offset, then the new log from its beginning
    errors = events(log, "consumer.record_before_stored_offset_differs")
    assert [(level, kw["stored_offset"]) for level, kw in errors] == [("error", 5)]
    assert store.resets == [(TP, 5)] and store.row == StoredOffset(0)  # GREATEST would keep 5 otherwise


async def test_a_record_before_the_stored_offset_that_no_longer_exists_is_accepted_unverified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Offsets 0..4 were deleted by retention: nothing to compare, and nothing to read again.
    store = FakeStore(5, fingerprint(record(4)))
    applied, kafka, log = await consume(range(5, 12), stored=store, monkeypatch=monkeypatch)
    assert applied == list(range(5, 12))
    assert kafka.seeks == [4]
    assert store.resets == []
    assert [level for level, _ in events(log, "consumer.record_before_stored_offset_gone")] == ["info"]
    assert accepted_gaps(log) == []


async def test_a_row_stored_without_a_fingerprint_is_read_from_the_stored_offset_unverified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore(5)  # stored before fingerprints were kept
    applied, kafka, log = await consume(range(12), stored=store, monkeypatch=monkeypatch)
    assert applied == list(range(5, 12))
    assert kafka.seeks == [5]
    assert store.resets == [] and events(log, "consumer.record_before_stored_offset_gone") == []


async def assigned_after_a_prefetch(
    monkeypatch: pytest.MonkeyPatch, *, committed: int
) -> tuple[ProjectionConsumer, FakeKafka, FakeStore, Any]:
    """A consumer whose first poll was fetched from Kafka's committed offset before the assignment's seek
    (aiokafka makes an assignment live before it awaits the listener); the stored row (5, fingerprint of
    the record at 4) matches the log as it is at that first fetch."""
    kafka = FakeKafka(range(12), asyncio.Event())
    kafka.position = committed
    consumer = projection_consumer(kafka, monkeypatch, batch_size=3)
    store = FakeStore(5, fingerprint(kafka.records[4]))
    use_store(consumer, store)
    listener = consumer_module._SeekToStoredOffsets(consumer)
    await listener.on_partitions_revoked([])
    prefetched = await consumer._fetch()
    return consumer, kafka, store, prefetched


async def test_a_poll_fetched_before_the_seek_does_not_count_as_the_record_being_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, kafka, _, prefetched = await assigned_after_a_prefetch(monkeypatch, committed=5)
    assert offsets_of(prefetched.records) == [5, 6, 7]  # no record 4: "gone", were it fetched after the seek
    await consumer_module._SeekToStoredOffsets(consumer).on_partitions_assigned([TP])
    assert kafka.seeks == [4]
    assert offsets_of(consumer.positions.applicable(prefetched.records, prefetched.number)) == []  # unverified
    assert kafka.seeks == [4, 4]  # and read again: its records, dropped, would be read no more
    fresh = await consumer._fetch()
    assert offsets_of(consumer.positions.applicable(fresh.records, fresh.number)) == [5, 6]  # 4 compared, equal


async def test_a_poll_fetched_before_the_seek_does_not_count_as_the_verification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, kafka, store, prefetched = await assigned_after_a_prefetch(monkeypatch, committed=4)
    assert offsets_of(prefetched.records) == [4, 5, 6]  # the record at 4 the row was stored from...
    kafka.replace_log(range(12))  # ...but the topic is deleted and created again before the seek
    await consumer_module._SeekToStoredOffsets(consumer).on_partitions_assigned([TP])
    assert offsets_of(consumer.positions.applicable(prefetched.records, prefetched.number)) == []
    fresh = await consumer._fetch()
    assert offsets_of(consumer.positions.applicable(fresh.records, fresh.number)) == []  # 4 differs
    assert consumer.positions.pending == [TP] and kafka.paused == {TP}
    await asyncio.wait_for(consumer.positions.settle_pending(asyncio.Event()), 5)  # a guard, not a speed check
    assert store.resets == [(TP, 5)] and kafka.paused == set()
    again = await consumer._fetch()
    assert offsets_of(consumer.positions.applicable(again.records, again.number)) == [0, 1, 2]


async def test_positions_the_listener_cannot_load_are_taken_by_the_consume_loop_once_the_database_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiokafka does not heartbeat during the assignment listener: it must not wait out a database outage
    there. The partitions are paused instead, and Kafka's advisory positions are never used: the loop
    takes PostgreSQL's when it can, and only then has the consumer joined (readiness)."""
    consumer, kafka = bare_consumer(monkeypatch)
    consumer.joined = False
    listener = consumer_module._SeekToStoredOffsets(consumer)
    attempts = 0

    async def load_offsets() -> dict[TopicPartition, StoredOffset]:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionRefusedError("database down")
        return {TP: StoredOffset(12)}

    consumer.load_offsets = load_offsets  # type: ignore[method-assign]
    await listener.on_partitions_revoked([])
    await asyncio.wait_for(listener.on_partitions_assigned([TP]), 1)  # a guard: it returns at once
    assert attempts == 1 and not consumer.joined
    assert kafka.paused == {TP} and kafka.seeks == []
    await asyncio.wait_for(consumer.positions.settle_pending(asyncio.Event()), 5)  # a guard, not a speed check
    assert attempts == 3 and consumer.joined and kafka.paused == set()
    assert consumer.positions.floors[TP] == 12 and kafka.seeks == [12]


async def test_settling_gives_up_at_once_when_the_consumer_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer, _ = bare_consumer(monkeypatch)
    consumer.positions.pending = [TP]

    async def load_offsets() -> dict[TopicPartition, StoredOffset]:
        raise ConnectionRefusedError("database down")

    consumer.load_offsets = load_offsets  # type: ignore[method-assign]
    stop = asyncio.Event()
    settling = asyncio.create_task(consumer.positions.settle_pending(stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(settling, 1)  # a guard: a stopped consumer must not wait for the database
    assert consumer.positions.pending == [TP] and not consumer.joined


async def test_a_revocation_does_not_wait_beyond_its_budget_for_a_batch_stuck_on_the_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiokafka does not heartbeat during the revocation listener: waiting there for a batch that retries
    through an outage would get the member evicted."""
    consumer, _ = bare_consumer(monkeypatch)
    consumer._listener_budget_s = 0.05
    listener = consumer_module._SeekToStoredOffsets(consumer)
    async with consumer._processing:  # a batch in flight that does not finish
        await asyncio.wait_for(listener.on_partitions_revoked([TP]), 2)  # a guard against waiting forever
    assert consumer.positions.rebalancing


# -- found in review: the end of an assignment, and a batch that commits during it ----------------------
TP2 = TopicPartition(TOPIC, 1)  # a partition that never had a record: no row, read from its beginning


async def assigned_with_a_fresh_partition(
    monkeypatch: pytest.MonkeyPatch, row: StoredOffset
) -> tuple[FakeKafka, ProjectionConsumer, RecordingLog]:
    """TP (stored ``row``) and TP2 (nothing stored) assigned; Kafka's committed position is 0."""
    kafka = FakeKafka(range(12), asyncio.Event())
    kafka.assigned = {TP, TP2}
    kafka.position = 0
    network = asyncio.Event()

    async def seek_to_beginning(*tps: TopicPartition) -> None:  # aiokafka: a round trip to the broker
        await network.wait()

    kafka.seek_to_beginning = seek_to_beginning  # type: ignore[method-assign]
    consumer = projection_consumer(kafka, monkeypatch, batch_size=3)
    store = FakeStore(0)
    store.row = row
    use_store(consumer, store)
    recording = RecordingLog()
    monkeypatch.setattr(consumer_module, "log", recording)
    listener = consumer_module._SeekToStoredOffsets(consumer)
    await listener.on_partitions_revoked([])
    # Ends without waiting on the broker after its first seek: nothing can be judged between a seek and the
    # end of the assignment (it used to await seek_to_beginning for TP2 after seeking TP).
    await asyncio.wait_for(listener.on_partitions_assigned([TP, TP2]), 1)
    return kafka, consumer, recording


async def test_records_fetched_right_after_the_assignments_seek_are_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    kafka, consumer, _ = await assigned_with_a_fresh_partition(monkeypatch, StoredOffset(5))
    assert kafka.seeks == [5]
    poll = await consumer._fetch()
    assert offsets_of(consumer.positions.applicable(poll.records, poll.number)) == [5, 6, 7]


async def test_the_record_fetched_right_after_the_assignments_seek_is_compared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replaced = fingerprint(record(4)) ^ 1  # the record at 4 of a log since deleted and created again
    kafka, consumer, log = await assigned_with_a_fresh_partition(monkeypatch, StoredOffset(5, replaced))
    assert kafka.seeks == [4]
    poll = await consumer._fetch()
    assert offsets_of(consumer.positions.applicable(poll.records, poll.number)) == []
    assert [level for level, _ in events(log, "consumer.record_before_stored_offset_differs")] == ["error"]
    assert consumer.positions.pending == [TP]  # to be read again from its beginning


async def test_a_batch_committing_after_the_offsets_were_loaded_is_no_replaced_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The revocation waits for the batch in flight only so long; it commits after the assignment loaded
    (5, fingerprint of 4) and the floor moves to 8. The record before 8 is not the one stored for 5."""
    kafka = FakeKafka(range(12), asyncio.Event())
    kafka.position = 5
    consumer = projection_consumer(kafka, monkeypatch, batch_size=3)
    store = FakeStore(5, fingerprint(kafka.records[4]))  # the same log: nothing was replaced
    use_store(consumer, store)
    recording = RecordingLog()
    monkeypatch.setattr(consumer_module, "log", recording)
    consumer.positions.floors[TP] = 5
    consumer.positions.rebalancing = False
    in_flight = await consumer._fetch()  # 5..7, its transaction slow
    listener = consumer_module._SeekToStoredOffsets(consumer)
    consumer._listener_budget_s = 0.01
    async with consumer._processing:  # the batch is still in its transaction
        await listener.on_partitions_revoked([TP])
        await listener.on_partitions_assigned([TP])  # loads (5, fingerprint of 4): seeks 4
    store.row = StoredOffset(8, fingerprint(kafka.records[7]))  # the batch commits
    consumer.positions.advance(in_flight.records)
    applied: list[int] = []
    for _ in range(4):
        poll = await consumer._fetch()
        batch = consumer.positions.applicable(poll.records, poll.number)
        applied += offsets_of(batch)
        consumer.positions.advance(batch)
    assert events(recording, "consumer.record_before_stored_offset_differs") == []
    assert store.resets == [] and consumer.positions.pending == []
    assert applied == [8, 9, 10, 11]
