"""One contract, two implementations: the in-memory fake and the PostgreSQL event store."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from shared.db.engine import create_engine
from shared.eventsourcing.store import ConcurrencyConflict, EventStore, InMemoryEventStore, NewEvent, PostgresEventStore
from shared.messaging.outbox import OutboxMessage

pytestmark = pytest.mark.contract


def new(n: int) -> list[NewEvent]:
    return [
        NewEvent(event_type="Thing", schema_version=1, data={"n": i}, occurred_at=datetime.now(UTC), metadata={"k": i})
        for i in range(n)
    ]


class EventStoreContract:
    """Every EventStore must pass these; subclasses provide the ``store`` fixture."""

    async def test_a_new_stream_reads_back_in_order_with_versions(self, store: EventStore) -> None:
        stream = f"s-{uuid.uuid4()}"
        assert await store.append(stream, "thing", 0, new(3)) == 3
        events = await store.read_stream(stream)
        assert [e.stream_version for e in events] == [1, 2, 3]
        assert [e.data["n"] for e in events] == [0, 1, 2]
        assert events[0].position < events[1].position < events[2].position
        assert await store.stream_version(stream) == 3

    async def test_appending_at_the_expected_version_extends_the_stream(self, store: EventStore) -> None:
        stream = f"s-{uuid.uuid4()}"
        await store.append(stream, "thing", 0, new(2))
        assert await store.append(stream, "thing", 2, new(1)) == 3
        assert [e.stream_version for e in await store.read_stream(stream, from_version=3)] == [3]

    @pytest.mark.parametrize("expected", [0, 1, 3])
    async def test_a_stale_or_future_expected_version_is_a_conflict(self, store: EventStore, expected: int) -> None:
        stream = f"s-{uuid.uuid4()}"
        await store.append(stream, "thing", 0, new(2))
        with pytest.raises(ConcurrencyConflict):
            await store.append(stream, "thing", expected, new(1))
        assert await store.stream_version(stream) == 2

    async def test_ten_concurrent_appends_at_one_version_have_exactly_one_winner(self, store: EventStore) -> None:
        stream = f"s-{uuid.uuid4()}"
        await store.append(stream, "thing", 0, new(1))
        results = await asyncio.gather(
            *(store.append(stream, "thing", 1, new(1)) for _ in range(10)), return_exceptions=True
        )
        assert sum(1 for r in results if r == 2) == 1
        assert sum(1 for r in results if isinstance(r, ConcurrencyConflict)) == 9
        assert [e.stream_version for e in await store.read_stream(stream)] == [1, 2]

    async def test_reading_an_unknown_stream_gives_nothing(self, store: EventStore) -> None:
        assert await store.read_stream(f"s-{uuid.uuid4()}") == []
        assert await store.stream_version(f"s-{uuid.uuid4()}") == 0


class TestInMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def store(self) -> EventStore:
        return InMemoryEventStore()


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    async def store(self, database_factory) -> EventStore:  # type: ignore[no-untyped-def]
        engine = create_engine(await database_factory("orders"), pool_size=12)
        yield PostgresEventStore(engine)
        await engine.dispose()

    async def test_events_and_outbox_rows_commit_together_or_not_at_all(self, store: PostgresEventStore) -> None:
        stream = f"s-{uuid.uuid4()}"
        message = OutboxMessage(topic="t", key="c-1", value=b"{}")
        await store.append(stream, "thing", 0, new(1), [message])
        with pytest.raises(ConcurrencyConflict):
            await store.append(stream, "thing", 0, new(1), [OutboxMessage(topic="t", key="c-1", value=b"{}")])
        async with store.engine.connect() as conn:
            count = await conn.scalar(text("SELECT count(*) FROM outbox"))
        assert count == 1

    async def test_a_failing_hook_rolls_back_the_events_the_outbox_and_the_hooks_own_writes(
        self, store: PostgresEventStore
    ) -> None:
        stream = f"s-{uuid.uuid4()}"

        async def write_then_fail(conn) -> None:  # type: ignore[no-untyped-def]
            await conn.execute(text("INSERT INTO inbox (consumer_group, event_id) VALUES ('g', gen_random_uuid())"))
            raise RuntimeError("the hook refuses")

        with pytest.raises(RuntimeError, match="refuses"):
            await store.append(
                stream, "thing", 0, new(2), [OutboxMessage(topic="t", key="k", value=b"{}")], write_then_fail
            )
        async with store.engine.connect() as conn:
            counts = [
                await conn.scalar(text(f"SELECT count(*) FROM {table}")) for table in ("events", "outbox", "inbox")
            ]
        assert counts == [0, 0, 0]
        assert await store.stream_version(stream) == 0

    async def test_a_hooks_writes_and_savepoints_commit_with_the_events(self, store: PostgresEventStore) -> None:
        stream = f"s-{uuid.uuid4()}"

        async def write_in_a_savepoint(conn) -> None:  # type: ignore[no-untyped-def]
            async with conn.begin_nested():
                await conn.execute(text("INSERT INTO inbox (consumer_group, event_id) VALUES ('g', gen_random_uuid())"))

        async with store.transaction() as tx:
            await store.append(stream, "thing", 0, new(1), hook=write_in_a_savepoint, tx=tx)
            # nothing is visible to others before the caller's transaction commits
            async with store.engine.connect() as other:
                assert await other.scalar(text("SELECT count(*) FROM inbox")) == 0
        async with store.engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM inbox")) == 1
        assert await store.stream_version(stream) == 1
