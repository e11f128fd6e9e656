"""``tierstream deadletters``: list what the consumers dead-lettered, and re-drive it once the cause is fixed.

``list`` reads the dead-letter topic (``crm.deadletter.v1``, in ``TIERSTREAM_TOPIC_NAMESPACE``) from its
beginning up to its end as it is when the command starts, then stops. ``redrive`` publishes the originals of
one consumer group's dead letters again — value, key and headers byte for byte, to the topic and partition
they were read from — so that every group reads them again. That is safe because consumers dedupe by
event_id in their inbox, and a dead-lettered event's id is never left there (its savepoint rolls back): a
group that applied the event drops the copy, and re-driving twice changes nothing. Never re-driven: a dead
letter whose value withholds personal data (it is not the original any more), and a record that is not
DeadLetter JSON. docs/operations.md, "Dead letters: inspect and re-drive", says when and what to expect.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import typer
from pydantic import ValidationError

from shared.events.deadletters import DeadLetter, EncodedBytes

if TYPE_CHECKING:  # aiokafka is imported where it is used: every other command starts faster without it
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from tierstream.tail import Record

#: Polls in a row that bring nothing while records are still due before the read gives up (200 ms each).
_IDLE_POLLS = 150


class DeadLettersError(RuntimeError):
    """The dead letters cannot be read or re-driven; the message says why and what to do."""


@dataclass(frozen=True)
class Original:
    """The record a dead letter was made of, as it is sent again."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Entry:
    """One record of the dead-letter topic: its DeadLetter and original, or why it is not one."""

    partition: int
    offset: int
    letter: DeadLetter | None = None
    original: Original | None = None
    withheld: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def position(self) -> str:
        return f"{self.partition}@{self.offset}"


@dataclass(frozen=True)
class Scan:
    """The dead-letter topic read to its end, and the partitions of every topic in the cluster."""

    entries: list[Entry]
    partitions: dict[str, set[int]]


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command acts on; a group or topic matches with or without the namespace."""

    group: str | None = None
    reason: str | None = None
    topic: str | None = None
    #: (partition or None for any, offset) in the dead-letter topic
    offsets: tuple[tuple[int | None, int], ...] = ()
    namespace: str = ""


def parse_record(record: Record) -> Entry:
    """The entry of one dead-letter record; a value that is not DeadLetter JSON is kept with the reason."""
    try:
        if record.value is None:
            raise ValueError("the record has no value")
        document = json.loads(record.value.decode("utf-8"))
        if not isinstance(document, dict):
            raise ValueError(f"the value is JSON {type(document).__name__}, not an object")
        withheld = _withheld(document.pop("withheld", None))
        letter = DeadLetter.model_validate(document)
        original = Original(
            letter.original.topic,
            letter.original.partition,
            _bytes(letter.original.key),
            _bytes(letter.value),
            [(name, _bytes(value)) for name, value in letter.original.headers],
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "value"
        problem = f"not a DeadLetter: {exc.error_count()} field errors, first {where}: {first['msg']}"
        return Entry(record.partition, record.offset, problem=problem)
    except ValueError as exc:  # not JSON, not UTF-8, or not base64
        return Entry(record.partition, record.offset, problem=f"not DeadLetter JSON: {exc}")
    return Entry(record.partition, record.offset, letter, original, withheld)


def _bytes(encoded: EncodedBytes | None) -> bytes | None:
    if encoded is None:
        return None
    if encoded.encoding == "utf-8":
        return encoded.data.encode()
    try:
        return base64.b64decode(encoded.data, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bytes marked base64 are not base64 ({exc})") from exc


def _withheld(value: Any) -> tuple[str, ...]:
    """``withheld`` as written: absent, null or empty, nothing withheld (older dead letters lack it). Read here,
    not by the model (which may not know it), and anything in it but a list counts too: never re-drive in doubt."""
    if not value:
        return ()
    return tuple(str(pointer) for pointer in value) if isinstance(value, list) else (str(value),)


def event_of(entry: Entry) -> tuple[str | None, str | None]:
    """(event_type, event_id) of the original: from its headers, else from its value when that is JSON."""
    found: dict[str, str] = {}
    if entry.original is not None:
        for name, value in entry.original.headers:
            if name in ("event_type", "event_id") and value is not None:
                found.setdefault(name, value[:100].decode("utf-8", "replace"))
        if len(found) < 2 and entry.original.value is not None:
            try:
                document = json.loads(entry.original.value)
            except ValueError:
                document = None
            if isinstance(document, dict):
                for name in ("event_type", "event_id"):
                    if isinstance(document.get(name), str):
                        found.setdefault(name, document[name][:100])
    return found.get("event_type"), found.get("event_id")


def select(entries: Iterable[Entry], selection: Selection) -> list[Entry]:
    """The dead letters (unreadable records never) that match every criterion given."""

    def named(wanted: str | None, actual: str) -> bool:
        return wanted is None or actual in (wanted, f"{selection.namespace}{wanted}")

    def at(entry: Entry) -> bool:
        return not selection.offsets or any(
            offset == entry.offset and partition in (None, entry.partition) for partition, offset in selection.offsets
        )

    return [
        e
        for e in entries
        if e.letter is not None
        and named(selection.group, e.letter.consumer_group)
        and named(selection.topic, e.letter.original.topic)
        and (selection.reason is None or e.letter.reason == selection.reason)
        and at(e)
    ]


@dataclass(frozen=True)
class RedrivePlan:
    """What ``redrive`` sends, and what it skips."""

    ready: list[Entry]
    withheld: list[Entry]
    unreadable: list[Entry]

    def skipped(self) -> str:
        return f"{len(self.withheld)} withholding personal data, {len(self.unreadable)} unreadable records"


def plan_redrive(scanned: Scan, selection: Selection) -> RedrivePlan:
    """The selected dead letters in topic order, those withholding personal data set apart. Fails (nothing is
    sent then) when an ``--offset`` names no or several of them, or an original's topic or partition is gone."""
    selected = sorted(select(scanned.entries, selection), key=lambda e: (e.partition, e.offset))
    for partition, offset in selection.offsets:
        matches = [e.position for e in selected if e.offset == offset and partition in (None, e.partition)]
        shown = f"{partition}@{offset}" if partition is not None else str(offset)
        if not matches:
            raise DeadLettersError(f"--offset {shown} matches no dead letter of the selection (see deadletters list)")
        if len(matches) > 1:
            raise DeadLettersError(f"--offset {shown} matches dead letters {', '.join(matches)}: give PARTITION@OFFSET")
    ready = [e for e in selected if not e.withheld]
    for entry in ready:
        assert entry.original is not None  # a parsed dead letter has one
        topic, partition = entry.original.topic, entry.original.partition
        if topic not in scanned.partitions:
            raise DeadLettersError(
                f"dead letter {entry.position}: its original topic {topic!r} is not in the cluster; nothing was sent"
            )
        if partition not in scanned.partitions[topic]:
            raise DeadLettersError(
                f"dead letter {entry.position}: {topic!r} has no partition {partition} now "
                f"({len(scanned.partitions[topic])} partitions); nothing was sent"
            )
    unreadable = [e for e in scanned.entries if e.letter is None]
    return RedrivePlan(ready, [e for e in selected if e.withheld], unreadable)


def parse_offset(value: str) -> tuple[int | None, int]:
    """``17`` or ``1@17`` (partition 1, offset 17 of the dead-letter topic)."""
    partition, at, offset = value.rpartition("@")
    if not offset.isdigit() or (at and not partition.isdigit()):
        raise typer.BadParameter(f"{value!r} is not an offset: give OFFSET or PARTITION@OFFSET, e.g. 17 or 1@17")
    return (int(partition) if at else None, int(offset))


class Reader(Protocol):
    """What the scan reads the topic with (tests pass a fake; Kafka: :class:`KafkaReader`)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def partitions(self) -> dict[str, set[int]]: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0) -> dict[TopicPartition, list[Any]]: ...


class KafkaReader:
    """A consumer outside any group (the tail's) reads; the admin client names the topics and their partitions:
    the consumer's own ``topics()`` fetches metadata it then forgets, so its ``partitions_for_topic`` knows none."""

    def __init__(self, bootstrap: str) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        from tierstream.tail import kafka_consumer

        self.consumer = cast("AIOKafkaConsumer", kafka_consumer(bootstrap, True))
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="tierstream-deadletters")
        self.assign = self.consumer.assign
        self.beginning_offsets = self.consumer.beginning_offsets
        self.end_offsets = self.consumer.end_offsets
        self.getmany = self.consumer.getmany

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def partitions(self) -> dict[str, set[int]]:
        return {t["topic"]: {p["partition"] for p in t["partitions"]} for t in await self.admin.describe_topics()}


async def scan(topic: str, bootstrap: str, *, reader_factory: Callable[[str], Reader] | None = None) -> Scan:
    """Every record of ``topic`` from its beginning to its end as of now, parsed."""
    from aiokafka import TopicPartition

    from tierstream.tail import TailError, check_topic_known, check_topic_name, connect

    try:
        check_topic_name(topic)
    except TailError as exc:
        raise DeadLettersError(f"{exc}; check --namespace (TIERSTREAM_TOPIC_NAMESPACE)") from exc
    reader = (reader_factory or KafkaReader)(bootstrap)
    try:
        partitions = await connect(reader, bootstrap, reader.partitions)
    except TailError as exc:
        raise DeadLettersError(str(exc)) from exc
    try:
        check_topic_known(topic, bootstrap, partitions, DeadLettersError)
        tps = [TopicPartition(topic, p) for p in sorted(partitions[topic])]
        reader.assign(tps)
        return Scan(await _read_to_end(reader, tps), partitions)
    finally:
        await reader.stop()


async def _read_to_end(reader: Reader, tps: list[TopicPartition]) -> list[Entry]:
    begin, end = await reader.beginning_offsets(tps), await reader.end_offsets(tps)
    due = {tp: begin[tp] for tp in tps if end[tp] > begin[tp]}  # tp → next offset expected
    entries: list[Entry] = []
    idle = 0
    while due:
        batch = await reader.getmany(*due, timeout_ms=200)
        idle = 0 if batch else idle + 1
        if idle >= _IDLE_POLLS:
            raise DeadLettersError(f"Kafka stopped delivering the dead-letter topic ({len(due)} partitions unread)")
        for tp, records in batch.items():
            entries.extend(parse_record(r) for r in records if r.offset < end[tp])
            if records:
                due[tp] = records[-1].offset + 1
            if due[tp] >= end[tp]:
                del due[tp]
    return entries


async def republish(originals: Sequence[Original], bootstrap: str) -> int:
    """Send ``originals`` with the project's idempotent producer (acks=all); the number acknowledged."""
    from aiokafka.errors import KafkaError

    from shared.messaging.kafka import make_producer

    producer = make_producer(bootstrap, client_id="tierstream-redrive")
    try:
        await producer.start()
        sent = [
            await producer.send(o.topic, value=o.value, key=o.key, partition=o.partition, headers=o.headers)
            for o in originals
        ]
        await asyncio.gather(*sent)
    except (KafkaError, OSError) as exc:
        raise DeadLettersError(
            f"sending to Kafka at {bootstrap} failed ({exc!r}); run the redrive again: "
            "a consumer drops a copy of an event it has applied"
        ) from exc
    finally:
        await producer.stop()
    return len(sent)
