"""``tierstream tail`` ends with a message on a bad topic or an unreachable Kafka, and prints any record."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiokafka.errors import KafkaConnectionError
from typer.testing import CliRunner

from tierstream import tail as tail_module
from tierstream.cli import app
from tierstream.tail import TailError, tail

pytestmark = pytest.mark.unit


@dataclass
class FakeRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class FakeConsumer:
    """A broker holding ``held`` topics with ``records`` on them; ``down``: nothing answers."""

    held: set[str] = field(default_factory=lambda: {"crm.orders.v1", "crm.customers.v1", "__consumer_offsets"})
    records: list[FakeRecord] = field(default_factory=list)
    down: bool = False
    subscribed: list[str] = field(default_factory=list)
    stopped: bool = False

    async def start(self) -> None:
        if self.down:
            logging.getLogger("aiokafka").error('Unable connect to "127.0.0.1:1": [Errno 111] Connect call failed')
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")

    async def stop(self) -> None:
        self.stopped = True

    async def topics(self) -> set[str]:
        return self.held

    def subscribe(self, topics: list[str]) -> None:
        self.subscribed = topics

    async def __aiter__(self) -> AsyncIterator[FakeRecord]:
        for record in self.records:
            yield record
        await asyncio.Event().wait()  # a live topic: nothing more arrives, the tail waits


def run_tail(consumer: FakeConsumer, topic: str = "crm.orders.v1", limit: int | None = 1) -> list[str]:
    lines: list[str] = []
    asyncio.run(
        tail(
            topic,
            "127.0.0.1:9092",
            from_beginning=True,
            limit=limit,
            emit=lines.append,
            consumer_factory=lambda bootstrap, from_beginning: consumer,
        )
    )
    return lines


def test_a_topic_the_cluster_does_not_hold_is_an_error_listing_the_ones_it_does() -> None:
    consumer = FakeConsumer()
    with pytest.raises(TailError) as raised:
        run_tail(consumer, "crm.nonexistent")
    message = str(raised.value)
    assert "no topic 'crm.nonexistent' in the cluster at 127.0.0.1:9092" in message
    assert "crm.customers.v1, crm.orders.v1" in message and "__consumer_offsets" not in message
    assert consumer.stopped and not consumer.subscribed


@pytest.mark.parametrize("topic", ["", "crm orders", "..", "x" * 250])
def test_a_name_kafka_cannot_have_is_refused_before_connecting(topic: str) -> None:
    with pytest.raises(TailError, match="is not a topic name"):
        run_tail(FakeConsumer(down=True), topic)


def test_an_unreachable_kafka_is_an_error_asking_whether_the_stack_is_up() -> None:
    consumer = FakeConsumer(down=True)
    with pytest.raises(
        TailError, match=r"cannot reach Kafka at 127\.0\.0\.1:9092 .*is the stack up\? \(tierstream up\)"
    ):
        run_tail(consumer)
    assert consumer.stopped


def test_each_record_is_one_json_line_whatever_bytes_its_key_and_value_hold() -> None:
    records = [
        FakeRecord(0, 7, b"C1", json.dumps({"event_type": "OrderPlaced", "n": "Ünï"}).encode()),
        FakeRecord(1, 8, b"\xff\xfe-bad", b"not json \xff"),
        FakeRecord(2, 9, None, None),
    ]
    lines = run_tail(FakeConsumer(records=records), limit=3)
    assert [json.loads(line) for line in lines] == [
        {"partition": 0, "offset": 7, "key": "C1", "value": {"event_type": "OrderPlaced", "n": "Ünï"}},
        {"partition": 1, "offset": 8, "key": "\ufffd\ufffd-bad", "value": "not json \ufffd"},
        {"partition": 2, "offset": 9, "key": None, "value": None},
    ]


def test_the_tail_stops_after_limit_records() -> None:
    records = [FakeRecord(0, n, b"C1", b"{}") for n in range(5)]
    assert len(run_tail(FakeConsumer(records=records), limit=2)) == 2


@pytest.mark.timeout(20)
def test_the_command_prints_one_line_per_event_and_fails_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = FakeConsumer(records=[FakeRecord(0, 0, b"C1", b'{"a": [1, 2]}')])
    monkeypatch.setattr(tail_module, "kafka_consumer", lambda bootstrap, from_beginning: consumer)
    result = CliRunner().invoke(app, ["tail", "crm.orders.v1", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert result.output == '{"partition": 0, "offset": 0, "key": "C1", "value": {"a": [1, 2]}}\n'
    result = CliRunner().invoke(app, ["tail", "crm.nonexistent", "--limit", "1"])
    assert result.exit_code == 1
    assert "error: no topic 'crm.nonexistent'" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_a_limit_below_one_is_refused(limit: str) -> None:
    result = CliRunner().invoke(app, ["tail", "crm.orders.v1", "--limit", limit])
    assert result.exit_code == 2
    assert "--limit" in result.output


def test_aiokafka_s_own_connection_error_line_does_not_come_before_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(TailError, match="cannot reach Kafka"):
        run_tail(FakeConsumer(down=True))

    assert [r for r in caplog.records if r.name.startswith("aiokafka")] == []
    assert logging.getLogger("aiokafka").level == logging.NOTSET  # quiet only while starting
