"""The shared consumer's prefetch across rebalances, against the real broker and PostgreSQL.

One consumer reads a 4-partition topic while events stream in; two more members of its group join and
leave again and again, each after it has applied something, so partitions change hands mid-stream with
prefetched polls in flight. At the end every produced event has been applied exactly once (a counting
projection without a unique key would show a second application, the inbox and offsets cannot hide a
missing one) and the offsets stored in PostgreSQL are the end of each partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db.engine import create_engine
from shared.events.envelope import Envelope
from shared.messaging.consumer import ProjectionConsumer
from shared.messaging.kafka import ensure_topics
from shared.messaging.outbox import OutboxMessage
from shared.testing.events import customer_registered
from shared.testing.kafka import produce

pytestmark = pytest.mark.fault

PARTITIONS = 4
CHUNK = 40  # events per produce call of the background stream
CYCLES = 5  # times the second and third member each join and leave
#: short, so that joins and departures are noticed within a heartbeat or two (the broker allows 1 s)
SESSION_TIMEOUT_MS = 2000


class CountingProjection:
    """Records each applied event with the member that applied it (no unique key: twice shows as twice)."""

    def __init__(self, member: str) -> None:
        self.member = member

    async def apply(self, conn: AsyncConnection, events: Sequence[Envelope]) -> Sequence[OutboxMessage]:
        if events:
            await conn.execute(
                text("INSERT INTO applied (event_id, member) SELECT unnest(CAST(:ids AS uuid[])), :m"),
                {"ids": [str(e.event_id) for e in events], "m": self.member},
            )
        return []


@dataclass
class Member:
    """One in-process consumer of the group, started and stopped on demand."""

    name: str
    engine: AsyncEngine
    topic: str
    bootstrap: str
    group: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def start(self) -> Member:
        consumer = ProjectionConsumer(
            self.engine,
            CountingProjection(self.name),
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            topics=[self.topic],
            deadletter_topic=f"{self.topic}.deadletter",
            batch_size=25,
            client_id=self.name,
            session_timeout_ms=SESSION_TIMEOUT_MS,
        )
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(consumer.run(self.stop))
        return self

    async def leave(self) -> None:
        """Graceful: the poll in flight commits, the member leaves the group (a rebalance for the rest)."""
        self.stop.set()
        if self.task is not None:
            await self.task  # re-raises whatever made the consumer fail


async def applied_by(engine: AsyncEngine, member: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM applied WHERE member = :m"), {"m": member}) or 0)


async def wait_for(
    what: str, condition: Callable[[], Awaitable[bool]], members: Sequence[Member], timeout_s: float = 30
) -> None:
    """Wait until ``condition`` holds; fail when a member died or after ``timeout_s`` (a hang, not speed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await condition():
        for m in members:
            if m.task is not None and m.task.done() and not m.stop.is_set():
                raise AssertionError(f"{m.name} stopped on its own: {m.task.exception()!r}")
        assert loop.time() < deadline, f"gave up waiting: {what}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def streaming(bootstrap: str, topic: str) -> AsyncIterator[list[str]]:
    """Produce events in chunks (keys spread over all partitions) until the block ends; yields their ids."""
    ids: list[str] = []
    done = asyncio.Event()

    async def stream() -> None:
        while not done.is_set():
            events = [customer_registered(f"c-{uuid.uuid4().hex[:8]}") for _ in range(CHUNK)]
            await produce(bootstrap, topic, [(e.customer_id.encode(), e.to_json()) for e in events])
            ids.extend(str(e.event_id) for e in events)
            await asyncio.sleep(0.05)

    task = asyncio.create_task(stream())
    try:
        yield ids
    finally:
        done.set()
        await task


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await reader.start()
    try:
        ends = await reader.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await reader.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


def applies_more(engine: AsyncEngine, member: str, *, than: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await applied_by(engine, member) > than

    return check


def consumed(engine: AsyncEngine, group: str, total: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        async with engine.connect() as conn:
            stored = await conn.scalar(
                text("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE consumer_group = :g"),
                {"g": group},
            )
        return int(stored or 0) >= total

    return check


async def test_members_joining_and_leaving_mid_stream_leave_every_event_applied_exactly_once(
    database_factory: Callable[[str], Awaitable[str]], namespace: str, kafka_bootstrap: str
) -> None:
    topic = f"{namespace}stream"
    group = f"{namespace}counting"
    await ensure_topics(kafka_bootstrap, [topic], partitions=PARTITIONS)
    engine = create_engine(await database_factory("segmentation"))  # any service database: inbox + offsets
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE applied (event_id uuid NOT NULL, member text NOT NULL)"))
    a, b, c = (Member(n, engine, topic, kafka_bootstrap, group) for n in ("a", "b", "c"))
    members = [a, b, c]
    try:
        a.start()
        async with streaming(kafka_bootstrap, topic) as produced:
            await wait_for("a applies events", applies_more(engine, "a", than=0), members)
            for cycle in range(CYCLES):
                for joiner in (b, c):
                    before = await applied_by(engine, joiner.name)
                    joiner.start()
                    await wait_for(
                        f"{joiner.name} applies events (cycle {cycle})",
                        applies_more(engine, joiner.name, than=before),
                        members,
                    )
                for leaver in (b, c):
                    await leaver.leave()
                    before = await applied_by(engine, "a")
                    await wait_for(
                        f"a goes on after {leaver.name} left (cycle {cycle})",
                        applies_more(engine, "a", than=before),
                        members,
                    )
        total = len(produced)
        assert total > 0
        ends = await end_offsets(kafka_bootstrap, topic)
        assert sum(ends.values()) == total
        await wait_for("the stored offsets reach the end of each partition", consumed(engine, group, total), members)
        await a.leave()

        async with engine.connect() as conn:
            counts: dict[str, int] = {
                r[0]: r[1] for r in await conn.execute(text("SELECT event_id::text, count(*) FROM applied GROUP BY 1"))
            }
            members_applying = {r[0] for r in await conn.execute(text("SELECT DISTINCT member FROM applied"))}
            stored = {
                r.partition: r.next_offset
                for r in await conn.execute(
                    text("SELECT partition, next_offset FROM consumer_offsets WHERE consumer_group = :g"),
                    {"g": group},
                )
            }
        twice = {k: n for k, n in counts.items() if n > 1}
        assert not twice, f"{len(twice)} events applied more than once, e.g. {list(twice.items())[:3]}"
        missing = set(produced) - set(counts)
        assert not missing, f"{len(missing)} of {total} produced events never applied, e.g. {sorted(missing)[:3]}"
        assert set(counts) == set(produced)
        assert members_applying == {"a", "b", "c"}
        assert stored == ends
    finally:
        for m in members:
            m.stop.set()
        await asyncio.gather(*(m.task for m in members if m.task is not None), return_exceptions=True)
        await engine.dispose()
