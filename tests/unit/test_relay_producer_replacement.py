"""After Kafka failed some sends, the relay publishes with a new producer, and marks only what a key may keep.

An idempotent producer whose send timed out during a broker outage kept failing with
``OutOfOrderSequenceNumber`` after the broker came back, and the relay re-sent its whole batch every
10 s (duplicates on the partitions that did accept it) until the service was restarted."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

import shared.messaging.relay as relay_module
from shared.messaging.relay import OutboxRelay, PublishFailed, acknowledged_in_key_order

pytestmark = pytest.mark.unit

FAILED = ConnectionError("no answer")


def rows(*keys: str | None) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=n, key=k) for n, k in enumerate(keys, start=1)]


@pytest.mark.parametrize(
    ("keys", "outcomes", "marked"),
    [
        (["a", "b", "a"], ["ok", "ok", "ok"], [1, 2, 3]),
        (["a", "b", "a"], ["ok", FAILED, "ok"], [1, 3]),  # another key's failure does not hold a back
        (["a", "a", "a"], ["ok", FAILED, "ok"], [1]),  # a's 3rd waits for its 2nd: a key's order holds
        (["a", "b", "a", "b"], [FAILED, "ok", "ok", FAILED], [2]),
        ([None, None], [FAILED, "ok"], []),  # rows without a key keep their order among themselves
    ],
)
def test_marked_sent_are_the_acknowledged_rows_with_no_earlier_failure_of_their_key(
    keys: list[str | None], outcomes: list[object], marked: list[int]
) -> None:
    assert [r.id for r in acknowledged_in_key_order(rows(*keys), outcomes)] == marked


class FakeProducer:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def start(self) -> None:
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_the_producer_is_replaced_before_the_batch_after_a_failed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    made = iter(["second", "third"])
    first = FakeProducer("first", log)
    relay = OutboxRelay(
        object(),  # type: ignore[arg-type]
        first,  # type: ignore[arg-type]
        service="relay-replacement-test",
        new_producer=lambda: FakeProducer(next(made), log),  # type: ignore[arg-type,return-value]
    )
    stop = asyncio.Event()
    batches = iter([PublishFailed(3, 1, FAILED), 0, 0])

    async def publish_batch() -> int:
        log.append(f"batch with {relay.producer.name}")  # type: ignore[attr-defined]
        outcome = next(batches)
        if isinstance(outcome, PublishFailed):
            relay._replace_producer = True  # as publish_batch does when sends failed
            raise outcome
        if "batch with second" in log and log.count("batch with second") == 2:
            stop.set()
        return outcome

    async def no_backlog() -> int:
        return 0

    monkeypatch.setattr(relay, "publish_batch", publish_batch)
    monkeypatch.setattr(relay, "backlog", no_backlog)
    monkeypatch.setattr(relay, "oldest_unsent_age_s", no_backlog)
    monkeypatch.setattr(relay_module, "_sleep_until", lambda stop, seconds: asyncio.sleep(0))
    await asyncio.wait_for(relay.run(stop), 5)  # a guard against a loop, not a speed check

    assert log == ["batch with first", "stop first", "start second", "batch with second", "batch with second"]
    assert relay.producer.name == "second"  # type: ignore[attr-defined]


async def test_a_replacement_that_cannot_start_is_tried_again_before_the_next_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    attempts = iter([ConnectionError("broker still away"), None])

    class Flaky(FakeProducer):
        async def start(self) -> None:
            await super().start()
            failure = next(attempts)
            if failure is not None:
                raise failure

    names = iter(["second", "third"])
    relay = OutboxRelay(
        object(),  # type: ignore[arg-type]
        FakeProducer("first", log),  # type: ignore[arg-type]
        service="relay-replacement-test",
        new_producer=lambda: Flaky(next(names), log),  # type: ignore[arg-type,return-value]
    )
    relay._replace_producer = True
    stop = asyncio.Event()

    async def publish_batch() -> int:
        log.append(f"batch with {relay.producer.name}")  # type: ignore[attr-defined]
        stop.set()
        return 0

    async def no_backlog() -> int:
        return 0

    monkeypatch.setattr(relay, "publish_batch", publish_batch)
    monkeypatch.setattr(relay, "backlog", no_backlog)
    monkeypatch.setattr(relay, "oldest_unsent_age_s", no_backlog)
    monkeypatch.setattr(relay_module, "_sleep_until", lambda stop, seconds: asyncio.sleep(0))
    await asyncio.wait_for(relay.run(stop), 5)

    assert log == ["stop first", "start second", "stop second", "start third", "batch with third"]
