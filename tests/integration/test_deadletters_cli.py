"""``tierstream deadletters`` against real Kafka and PostgreSQL: a handler fails, the event is dead-lettered,
the handler is fixed, ``redrive`` sends the original again and the consumer applies it once; again changes nothing.

Two consumer groups read the customers topic: ``fixable``, whose handler fails on one event until it is fixed,
and ``healthy``, which applies everything the first time, so that the copy a redrive sends reaches a group that
already applied the event too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from test_projection_consumer import run_consumer_until
from typer.testing import CliRunner

from shared.db.engine import create_engine
from shared.events.envelope import Envelope
from shared.events.topics import Topics
from shared.messaging.consumer import ProjectionConsumer
from shared.messaging.kafka import make_producer
from shared.messaging.outbox import OutboxMessage
from shared.messaging.relay import OutboxRelay
from shared.testing.events import customer_registered
from shared.testing.kafka import read_topic
from tierstream.cli import app

pytestmark = pytest.mark.integration


class FixableProjection:
    """Records each event it applies (no unique key: twice shows as twice); fails on the event ids in ``broken``
    until they are taken out of it — the handler "fixed"."""

    def __init__(self, group: str, broken: set[str]) -> None:
        self.group = group
        self.broken = broken

    async def apply(self, conn: AsyncConnection, events: Sequence[Envelope]) -> Sequence[OutboxMessage]:
        failing = [str(e.event_id) for e in events if str(e.event_id) in self.broken]
        if failing:
            raise RuntimeError(f"handler bug on {failing}")
        if events:
            await conn.execute(
                text("INSERT INTO applied (consumer_group, event_id) SELECT :g, unnest(CAST(:ids AS uuid[]))"),
                {"g": self.group, "ids": [str(e.event_id) for e in events]},
            )
        return []


@pytest.fixture
async def engine(database_factory: Callable[[str], Awaitable[str]]) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(await database_factory("segmentation"))  # any service database: inbox, offsets, outbox
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE applied (consumer_group text NOT NULL, event_id uuid NOT NULL)"))
    yield engine
    await engine.dispose()


async def consume(
    engine: AsyncEngine, topics: Topics, bootstrap: str, projection: FixableProjection, records: int
) -> None:
    """Run a consumer of ``projection``'s group until its stored offsets have passed ``records`` records."""
    consumer = ProjectionConsumer(
        engine,
        projection,
        bootstrap_servers=bootstrap,
        group_id=projection.group,
        topics=[topics.customers],
        deadletter_topic=topics.deadletter,
        handler_attempts=2,
    )
    await run_consumer_until(consumer, stored_offsets(engine, projection.group, records))


def stored_offsets(engine: AsyncEngine, group: str, total: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        async with engine.connect() as conn:
            stored = await conn.scalar(
                text("SELECT sum(next_offset) FROM consumer_offsets WHERE consumer_group = :g"), {"g": group}
            )
        return stored == total

    return check


async def applied(engine: AsyncEngine, group: str) -> dict[str, int]:
    """How many times ``group`` applied each event."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT event_id, count(*) FROM applied WHERE consumer_group = :g GROUP BY event_id"), {"g": group}
        )
        return {str(event_id): count for event_id, count in rows}


async def cli(*args: str) -> str:
    """``tierstream deadletters …`` (it runs its own event loop: in a thread); its output, after exit code 0."""
    result = await asyncio.to_thread(CliRunner().invoke, app, ["deadletters", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


async def test_a_fixed_handler_applies_a_redriven_event_once_and_a_second_redrive_changes_nothing(
    engine: AsyncEngine, topics: Topics, kafka_bootstrap: str
) -> None:
    first, failing = customer_registered("c-1"), customer_registered("c-2")
    producer = make_producer(kafka_bootstrap, client_id="test-producer")
    await producer.start()
    try:
        for event in (first, failing):
            await producer.send_and_wait(
                topics.customers, event.to_json(), key=event.customer_id.encode(), headers=event.headers()
            )
    finally:
        await producer.stop()
    fixable = FixableProjection(f"{topics.namespace}fixable", broken={str(failing.event_id)})
    healthy = FixableProjection(f"{topics.namespace}healthy", broken=set())
    for projection in (fixable, healthy):
        await consume(engine, topics, kafka_bootstrap, projection, records=2)

    ids = str(first.event_id), str(failing.event_id)
    assert await applied(engine, fixable.group) == {ids[0]: 1}
    assert await applied(engine, healthy.group) == {ids[0]: 1, ids[1]: 1}
    async with engine.connect() as conn:  # the dead-lettered event's id is not left in the inbox
        inbox = await conn.execute(
            text("SELECT consumer_group, event_id FROM inbox WHERE event_id = :e"), {"e": ids[1]}
        )
        assert [row.consumer_group for row in inbox] == [healthy.group]
    relay = make_producer(kafka_bootstrap, client_id="test-relay")
    await relay.start()
    try:
        assert await OutboxRelay(engine, relay, service="deadletters-test").publish_batch() == 1
    finally:
        await relay.stop()

    options = ["--bootstrap", kafka_bootstrap, "--namespace", topics.namespace]
    [listed] = [json.loads(line) for line in (await cli("list", "--json", *options)).splitlines()]
    assert (listed["consumer_group"], listed["reason"]) == (fixable.group, "handler_failed")
    assert (listed["event_type"], listed["event_id"]) == ("CustomerRegistered", ids[1])
    assert listed["original"]["topic"] == topics.customers

    fixable.broken.clear()  # the handler bug is fixed
    out = await cli("redrive", "--group", "fixable", "--yes", *options)
    assert "sent 1 record to their original topics; skipped: 0 withholding personal data, 0 unreadable" in out
    records = await read_topic(kafka_bootstrap, topics.customers, expect=3)
    sent = sorted((r for r in records if r.key == b"c-2"), key=lambda r: r.offset)  # the original, then the copy
    assert [(r.partition, r.key, r.value, list(r.headers)) for r in sent] == [
        (listed["original"]["partition"], b"c-2", failing.to_json(), failing.headers())
    ] * 2
    for projection in (fixable, healthy):
        await consume(engine, topics, kafka_bootstrap, projection, records=3)
    assert await applied(engine, fixable.group) == {ids[0]: 1, ids[1]: 1}
    assert await applied(engine, healthy.group) == {ids[0]: 1, ids[1]: 1}  # it had applied it: the copy is dropped

    out = await cli("redrive", "--group", f"{topics.namespace}fixable", "--yes", *options)  # the same, again
    assert "sent 1 record " in out
    for projection in (fixable, healthy):
        await consume(engine, topics, kafka_bootstrap, projection, records=4)
    assert await applied(engine, fixable.group) == {ids[0]: 1, ids[1]: 1}
    assert await applied(engine, healthy.group) == {ids[0]: 1, ids[1]: 1}
    async with engine.connect() as conn:
        dead = await conn.scalar(text("SELECT count(*) FROM outbox WHERE topic = :t"), {"t": topics.deadletter})
    assert dead == 1  # the copies were applied or dropped, never dead-lettered again
