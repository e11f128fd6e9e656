"""The event store port and its two implementations (PostgreSQL and an in-memory fake).

``append`` writes a stream's new events *and* their outbox messages in one transaction; a stream that
moved past ``expected_version`` raises :class:`ConcurrencyConflict` (the primary key on
(stream_id, stream_version) turns a race into a unique violation — never a silent overwrite).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db.tables import events as events_table
from shared.messaging.outbox import OutboxMessage, write_outbox


class ConcurrencyConflict(Exception):
    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None = None) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        actual = "" if actual_version is None else f", actual {actual_version}"
        super().__init__(f"stream {stream_id!r} is not at version {expected_version}{actual}")


@dataclass(frozen=True, slots=True)
class NewEvent:
    event_type: str
    schema_version: int
    data: dict[str, Any]
    occurred_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    position: int
    stream_id: str
    stream_version: int
    aggregate_type: str
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    occurred_at: datetime
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime | None = None


#: Extra work done inside the append transaction (e.g. storing an idempotent response).
TransactionHook = Callable[[AsyncConnection], Awaitable[None]]


class EventStore(Protocol):
    async def append(
        self,
        stream_id: str,
        aggregate_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        outbox: Sequence[OutboxMessage] = (),
        hook: TransactionHook | None = None,
    ) -> int:
        """Append ``events`` after ``expected_version``; return the new stream version."""
        ...

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[StoredEvent]: ...

    async def stream_version(self, stream_id: str) -> int: ...


class PostgresEventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def append(
        self,
        stream_id: str,
        aggregate_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        outbox: Sequence[OutboxMessage] = (),
        hook: TransactionHook | None = None,
    ) -> int:
        async with self.engine.begin() as conn:
            return await self.append_in(conn, stream_id, aggregate_type, expected_version, events, outbox, hook)

    async def append_in(
        self,
        conn: AsyncConnection,
        stream_id: str,
        aggregate_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        outbox: Sequence[OutboxMessage] = (),
        hook: TransactionHook | None = None,
    ) -> int:
        """Append inside the caller's transaction (for callers that do more in the same one)."""
        if expected_version > 0:
            current = await self._version_in(conn, stream_id)
            if current != expected_version:
                raise ConcurrencyConflict(stream_id, expected_version, current)
        rows = [
            {
                "stream_id": stream_id,
                "stream_version": expected_version + i,
                "aggregate_type": aggregate_type,
                "event_id": e.event_id,
                "event_type": e.event_type,
                "schema_version": e.schema_version,
                "occurred_at": e.occurred_at,
                "data": e.data,
                "metadata": e.metadata,
            }
            for i, e in enumerate(events, start=1)
        ]
        if rows:
            try:
                async with conn.begin_nested():
                    await conn.execute(insert(events_table), rows)
            except IntegrityError as exc:
                if "events_pkey" in str(exc.orig):
                    raise ConcurrencyConflict(stream_id, expected_version) from exc
                raise
        await write_outbox(conn, outbox)
        if hook is not None:
            await hook(conn)
        return expected_version + len(rows)

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[StoredEvent]:
        query = (
            select(events_table)
            .where(events_table.c.stream_id == stream_id, events_table.c.stream_version >= from_version)
            .order_by(events_table.c.stream_version)
        )
        async with self.engine.connect() as conn:
            result = await conn.execute(query)
            return [StoredEvent(**row._mapping) for row in result]

    async def stream_version(self, stream_id: str) -> int:
        async with self.engine.connect() as conn:
            return await self._version_in(conn, stream_id)

    @staticmethod
    async def _version_in(conn: AsyncConnection, stream_id: str) -> int:
        query = select(func.coalesce(func.max(events_table.c.stream_version), 0)).where(
            events_table.c.stream_id == stream_id
        )
        return int((await conn.execute(query)).scalar_one())


class InMemoryEventStore:
    """A fake with the same contract, for unit tests of handlers (see the contract tests)."""

    def __init__(self) -> None:
        self.streams: dict[str, list[StoredEvent]] = {}
        self.outbox: list[OutboxMessage] = []
        self._position = 0
        self._event_ids: set[uuid.UUID] = set()

    async def append(
        self,
        stream_id: str,
        aggregate_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        outbox: Sequence[OutboxMessage] = (),
        hook: TransactionHook | None = None,
    ) -> int:
        stream = self.streams.get(stream_id, [])
        if len(stream) != expected_version:
            raise ConcurrencyConflict(stream_id, expected_version, len(stream))
        if any(e.event_id in self._event_ids for e in events):
            raise ValueError("duplicate event_id")
        new = []
        for i, e in enumerate(events, start=1):
            self._position += 1
            new.append(
                StoredEvent(
                    position=self._position,
                    stream_id=stream_id,
                    stream_version=expected_version + i,
                    aggregate_type=aggregate_type,
                    event_id=e.event_id,
                    event_type=e.event_type,
                    schema_version=e.schema_version,
                    occurred_at=e.occurred_at,
                    data=e.data,
                    metadata=e.metadata,
                )
            )
        outbox_size = len(self.outbox)
        self.streams[stream_id] = stream + new
        self._event_ids.update(e.event_id for e in events)
        self.outbox.extend(outbox)
        if hook is not None:
            try:
                await hook(None)  # type: ignore[arg-type]  # fakes' hooks take no connection
            except BaseException:
                # the "transaction" rolls back: events, outbox rows and ids of this append vanish
                self.streams[stream_id] = stream
                del self.outbox[outbox_size:]
                self._event_ids.difference_update(e.event_id for e in events)
                raise
        return expected_version + len(new)

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[StoredEvent]:
        return [e for e in self.streams.get(stream_id, []) if e.stream_version >= from_version]

    async def stream_version(self, stream_id: str) -> int:
        return len(self.streams.get(stream_id, []))
