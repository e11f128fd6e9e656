"""``write_outbox`` against real PostgreSQL: its rows belong to the caller's transaction, however it began."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import create_engine, transaction
from shared.messaging.outbox import OutboxMessage, write_outbox

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_factory) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    engine = create_engine(await database_factory("orders"))
    yield engine
    await engine.dispose()


def messages(n: int) -> list[OutboxMessage]:
    return [
        OutboxMessage(topic="t.out", key=f"c-{i}", value=f'{{"n":{i}}}'.encode(), headers=(("event_type", "X"),))
        for i in range(n)
    ]


async def rows(engine: AsyncEngine) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT topic, key, value, headers FROM outbox ORDER BY key"))
        return [tuple(r) for r in result]


async def test_messages_written_as_the_first_statement_of_a_transaction_roll_back_with_it(
    engine: AsyncEngine,
) -> None:
    """SQLAlchemy sends BEGIN lazily: a write straight to the driver before it would escape the rollback."""
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await write_outbox(conn, messages(2))
            raise RuntimeError("the business transaction fails")
    assert await rows(engine) == []


async def test_messages_after_other_writes_share_the_transaction_and_commit_with_it(engine: AsyncEngine) -> None:
    marker = uuid.uuid4().hex
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(1)"))
            await write_outbox(conn, messages(3))
            raise RuntimeError(marker)
    assert await rows(engine) == []
    async with engine.begin() as conn:
        await conn.execute(text("SELECT 1"))
        await write_outbox(conn, messages(3))
        await write_outbox(conn, [])
    assert await rows(engine) == [("t.out", f"c-{i}", f'{{"n":{i}}}'.encode(), [["event_type", "X"]]) for i in range(3)]


async def test_the_bare_driver_of_a_transaction_is_accepted_too(engine: AsyncEngine) -> None:
    async with transaction(engine) as tx:
        await write_outbox(tx.driver, messages(1))
        await write_outbox(tx.conn, messages(1)[:0])
    assert [r[1] for r in await rows(engine)] == ["c-0"]
