"""Reading dead letters back: parsing, selection and the redrive plan, on dead letters made by the real writer."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import typer
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import ConsumerRecord

from shared.messaging.deadletter import dead_letter
from tierstream.deadletters import (
    DeadLettersError,
    Entry,
    Original,
    Scan,
    Selection,
    event_of,
    parse_offset,
    parse_record,
    plan_redrive,
    scan,
    select,
)

pytestmark = pytest.mark.unit

DLQ = "crm.deadletter.v1"
EVENT = {"event_id": "5f0c6c4e-8a53-4c38-9b43-0a4e5d2f4c11", "event_type": "OrderPlaced", "customer_id": "C1"}


@dataclass
class FakeRecord:
    """A record of the dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def original_record(
    value: bytes | None = b"",
    *,
    topic: str = "crm.orders.v1",
    partition: int = 2,
    offset: int = 41,
    key: bytes | None = b"C1",
    headers: list[tuple[str, bytes | None]] | None = None,
) -> ConsumerRecord:
    value = json.dumps(EVENT).encode() if value == b"" else value
    size = len(value) if value is not None else 0
    return ConsumerRecord(topic, partition, offset, 1_700_000_000_000, 0, key, value, None, 0, size, headers or [])


def letter(
    at: tuple[int, int],
    original: ConsumerRecord | None = None,
    *,
    group: str = "segmentation.projector",
    reason: str = "handler_failed",
    personal_data: bool = False,
) -> FakeRecord:
    """The dead letter a consumer of ``group`` writes for ``original``, at (partition, offset) of the topic."""
    message = dead_letter(
        original or original_record(),
        topic=DLQ,
        consumer_group=group,
        reason=reason,
        detail=f"{reason}: something about the record",
        personal_data=personal_data,
    )
    return FakeRecord(at[0], at[1], message.key.encode() if message.key else None, message.value)


def with_field(record: FakeRecord, **fields: Any) -> FakeRecord:
    document = {**json.loads(record.value or b""), **fields}
    return FakeRecord(record.partition, record.offset, record.key, json.dumps(document).encode())


def test_the_original_comes_back_byte_for_byte_whatever_its_key_value_and_headers_hold() -> None:
    headers: list[tuple[str, bytes | None]] = [("event_id", b"e-1"), ("binary", b"\xff\x00\xfe"), ("empty", None)]
    raw = original_record(b"\x89PNG not utf-8 \xff", key=b"\xfe-key", headers=headers, partition=1, offset=7)
    entry = parse_record(letter((0, 3), raw))
    assert entry.problem is None and entry.position == "0@3"
    assert entry.original == Original("crm.orders.v1", 1, b"\xfe-key", b"\x89PNG not utf-8 \xff", headers)


def test_a_null_original_value_comes_back_as_null() -> None:
    entry = parse_record(letter((0, 0), original_record(None)))
    assert entry.original is not None and entry.original.value is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"{not json", "not DeadLetter JSON: Expecting property name enclosed in double quotes"),
        (b"[1, 2]", "not DeadLetter JSON: the value is JSON list, not an object"),
        (None, "not DeadLetter JSON: the record has no value"),
        (b"\xff\xfe", "not DeadLetter JSON: 'utf-8' codec can't decode byte 0xff"),
        (b'{"format": "DeadLetter"}', "not a DeadLetter: 7 field errors, first format_version: Field required"),
    ],
)
def test_a_record_that_is_not_a_dead_letter_is_kept_with_the_reason(value: bytes | None, problem: str) -> None:
    entry = parse_record(FakeRecord(1, 9, None, value))
    assert entry.letter is None and entry.original is None
    assert entry.problem is not None and entry.problem.startswith(problem)


def test_bytes_marked_base64_that_are_not_base64_make_the_record_unreadable() -> None:
    record = letter((0, 1), original_record(b"\xff"))
    document = json.loads(record.value or b"")
    document["value"]["data"] = "not*base64"
    entry = parse_record(FakeRecord(0, 1, None, json.dumps(document).encode()))
    assert entry.problem is not None and "bytes marked base64 are not base64" in entry.problem


def test_a_dead_letter_withholding_personal_data_says_where() -> None:
    document = {**EVENT, "data": {"reason": "call Li Wei on +86-138-0000-7732"}}
    record = letter(
        (0, 4), original_record(json.dumps(document).encode()), reason="invalid_payload", personal_data=True
    )
    assert parse_record(record).withheld == ("/data/reason",)


@pytest.mark.parametrize(
    ("withheld", "expected"),
    [(None, ()), ([], ()), (["/data/a", "/data/b"], ("/data/a", "/data/b")), ("/data/a", ("/data/a",))],
)
def test_withheld_is_read_from_the_json_absent_and_empty_meaning_nothing_and_anything_else_something(
    withheld: Any, expected: tuple[str, ...]
) -> None:
    record = letter((0, 5))
    document = json.loads(record.value or b"")
    del document["withheld"]  # a dead letter written before the field existed
    assert parse_record(FakeRecord(0, 5, None, json.dumps(document).encode())).withheld == ()
    entry = parse_record(with_field(record, withheld=withheld))
    assert entry.problem is None and entry.withheld == expected


def test_the_event_is_named_from_the_headers_else_from_the_value() -> None:
    from_headers = original_record(b"{not json", headers=[("event_type", b"OrderPaid"), ("event_id", b"e-9")])
    assert event_of(parse_record(letter((0, 0), from_headers))) == ("OrderPaid", "e-9")
    assert event_of(parse_record(letter((0, 1)))) == ("OrderPlaced", EVENT["event_id"])
    assert event_of(parse_record(letter((0, 2), original_record(b"{not json")))) == (None, None)


ENTRIES = [
    parse_record(letter((0, 0), group="t1.segmentation.projector", reason="handler_failed")),
    parse_record(letter((0, 1), original_record(topic="t1.crm.customers.v1"), group="t1.orders.credit-terms")),
    parse_record(letter((1, 0), group="t1.segmentation.projector", reason="unknown_event_type")),
    parse_record(FakeRecord(1, 1, None, b"garbage")),
    parse_record(letter((2, 1), group="t1.segmentation.projector", reason="handler_failed")),
]


def positions(entries: list[Entry]) -> list[str]:
    return [e.position for e in entries]


def test_a_group_or_topic_matches_with_or_without_the_namespace() -> None:
    assert positions(select(ENTRIES, Selection(group="segmentation.projector", namespace="t1."))) == [
        "0@0",
        "1@0",
        "2@1",
    ]
    assert positions(select(ENTRIES, Selection(group="t1.orders.credit-terms", namespace="t1."))) == ["0@1"]
    assert positions(select(ENTRIES, Selection(topic="crm.customers.v1", namespace="t1."))) == ["0@1"]
    assert select(ENTRIES, Selection(group="segmentation.projector")) == []  # no namespace given


def test_reason_and_offsets_narrow_the_selection_and_unreadable_records_are_never_selected() -> None:
    assert positions(select(ENTRIES, Selection(reason="handler_failed"))) == ["0@0", "0@1", "2@1"]
    assert positions(select(ENTRIES, Selection(offsets=((None, 1),)))) == ["0@1", "2@1"]
    assert positions(select(ENTRIES, Selection(offsets=((2, 1), (1, 0))))) == ["1@0", "2@1"]
    assert len(select(ENTRIES, Selection())) == 4


def scanned(entries: list[Entry], partitions: dict[str, set[int]] | None = None) -> Scan:
    return Scan(entries, partitions or {"crm.orders.v1": {0, 1, 2}, "t1.crm.customers.v1": {0, 1, 2}})


def test_the_plan_sets_apart_the_dead_letters_that_withhold_personal_data_and_counts_the_unreadable() -> None:
    withheld = parse_record(with_field(letter((1, 7)), withheld=["/data/reason"]))
    plan = plan_redrive(scanned([*ENTRIES, withheld]), Selection(group="segmentation.projector", namespace="t1."))
    assert positions(plan.ready) == ["0@0", "1@0", "2@1"]
    assert positions(plan.withheld) == ["1@7"] and positions(plan.unreadable) == ["1@1"]
    assert plan.skipped() == "1 withholding personal data, 1 unreadable records"


def test_an_offset_without_a_partition_must_name_one_dead_letter() -> None:
    group = Selection(group="t1.segmentation.projector", offsets=((None, 1),))
    with pytest.raises(DeadLettersError, match=r"^--offset 1 matches no dead letter of the selection"):
        plan_redrive(scanned(ENTRIES[:2]), group)
    with pytest.raises(DeadLettersError, match=r"^--offset 1 matches dead letters 0@1, 2@1: give PARTITION@OFFSET$"):
        plan_redrive(scanned(ENTRIES), Selection(offsets=((None, 1),)))
    assert positions(plan_redrive(scanned(ENTRIES), group).ready) == ["2@1"]


def test_nothing_is_planned_when_an_original_topic_or_partition_is_gone() -> None:
    selection = Selection(group="t1.segmentation.projector")
    with pytest.raises(DeadLettersError, match=r"^dead letter 0@0: its original topic 'crm.orders.v1' is not in"):
        plan_redrive(scanned(ENTRIES, {"t1.crm.customers.v1": {0}}), selection)
    with pytest.raises(DeadLettersError, match=r"'crm.orders.v1' has no partition 2 now \(2 partitions\); nothing"):
        plan_redrive(scanned(ENTRIES, {"crm.orders.v1": {0, 1}}), selection)


@pytest.mark.parametrize(("value", "expected"), [("17", (None, 17)), ("1@17", (1, 17)), ("0@0", (0, 0))])
def test_an_offset_is_given_alone_or_with_its_partition(value: str, expected: tuple[int | None, int]) -> None:
    assert parse_offset(value) == expected


@pytest.mark.parametrize("value", ["", "x", "-1", "1@", "@17", "1@2@3", "a@1"])
def test_anything_else_is_not_an_offset(value: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not an offset: give OFFSET or PARTITION@OFFSET"):
        parse_offset(value)


@dataclass
class FakeReader:
    """A broker whose dead-letter topic holds ``records``; ``end`` per partition is where they end at the start
    (records past it arrived later and must not be read); ``down``: nothing answers."""

    records: dict[int, list[FakeRecord]] = field(default_factory=dict)
    end: dict[int, int] = field(default_factory=dict)
    held: set[str] = field(default_factory=lambda: {DLQ, "crm.orders.v1"})
    down: bool = False
    stopped: bool = False
    polls: int = 0

    async def start(self) -> None:
        if self.down:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")

    async def stop(self) -> None:
        self.stopped = True

    async def partitions(self) -> dict[str, set[int]]:
        return {topic: set(self.end) if topic == DLQ else {0, 1, 2} for topic in self.held}

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: min((r.offset for r in self.records.get(tp.partition, [])), default=0) for tp in partitions}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.end[tp.partition] for tp in partitions}

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0) -> dict[TopicPartition, list[Any]]:
        """Two records per partition and poll, the way a fetch hands out what it holds."""
        self.polls += 1
        batch = {}
        for tp in partitions:
            held = self.records.get(tp.partition, [])
            batch[tp], self.records[tp.partition] = held[:2], held[2:]
        return {tp: records for tp, records in batch.items() if records}


def run_scan(reader: FakeReader, topic: str = DLQ) -> Scan:
    return asyncio.run(scan(topic, "127.0.0.1:9092", reader_factory=lambda bootstrap: reader))


def test_the_scan_reads_every_partition_to_its_end_at_the_start_and_stops_there() -> None:
    records = {
        0: [letter((0, n)) for n in range(5)],  # offsets 3 and 4 arrive after the scan started
        1: [letter((1, n)) for n in range(2, 4)],  # 0 and 1 are gone (the log starts at 2)
    }
    reader = FakeReader(records=records, end={0: 3, 1: 4, 2: 0})
    found = run_scan(reader)
    assert [e.position for e in found.entries] == ["0@0", "0@1", "1@2", "1@3", "0@2"]
    assert found.partitions[DLQ] == {0, 1, 2} and found.partitions["crm.orders.v1"] == {0, 1, 2}
    assert reader.stopped and reader.polls == 2


def test_an_empty_topic_is_read_without_a_single_poll() -> None:
    reader = FakeReader(end={0: 0, 1: 0})
    assert run_scan(reader).entries == [] and reader.polls == 0


def test_an_unreachable_kafka_or_a_missing_topic_is_an_error_saying_so() -> None:
    down = FakeReader(down=True)
    with pytest.raises(DeadLettersError, match=r"^cannot reach Kafka at 127\.0\.0\.1:9092 .*\(tierstream up\)$"):
        run_scan(down)
    assert down.stopped
    with pytest.raises(DeadLettersError, match=r"^no topic 't9\.crm\.deadletter\.v1' in the cluster at .*crm\.orders"):
        run_scan(FakeReader(end={0: 0}), "t9.crm.deadletter.v1")
    with pytest.raises(DeadLettersError, match=r"is not a topic name.*; check --namespace"):
        run_scan(FakeReader(), "bad ns.crm.deadletter.v1")
