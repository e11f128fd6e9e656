"""The event store port and its two implementations (PostgreSQL and an in-memory fake).

``append`` writes a stream's new events *and* their outbox messages in one transaction; a stream that
moved past ``expected_version`` raises :class:`ConcurrencyConflict` (the primary key on
(stream_id, stream_version) turns a race into a unique violation — never a silent overwrite).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db.engine import Transaction, driver_connection, transaction
from shared.messaging.outbox import OutboxMessage, outbox_columns


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
        tx: Any = None,
    ) -> int:
        """Append ``events`` after ``expected_version``; return the new stream version.

        ``tx`` (from :meth:`transaction`) runs the append in a transaction the caller holds open."""
        ...

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A transaction for commands that read and append together; commits when the block ends."""
        ...

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[StoredEvent]: ...

    async def stream_version(self, stream_id: str) -> int: ...


class PostgresEventStore:
    """The event store on PostgreSQL, through the asyncpg driver (prepared statements, no SQL compilation).

    An append is one statement: it checks the stream's version, inserts the events and their outbox rows
    (data-modifying CTEs over ``unnest`` arrays), so a command costs the same round trips for one event or
    ten. Hooks then run on the same transaction's SQLAlchemy connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """One transaction for a command that reads and appends together (pass it as ``tx``)."""
        return transaction(self.engine)

    async def append(
        self,
        stream_id: str,
        aggregate_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        outbox: Sequence[OutboxMessage] = (),
        hook: TransactionHook | None = None,
        tx: Transaction | None = None,
    ) -> int:
        if tx is not None:
            return await self.append_in(tx, stream_id, aggregate_type, expected_version, events, outbox, hook)
        async with transaction(self.engine) as own:
            return await self.append_in(own, stream_id, aggregate_type, expected_version, events, outbox, hook)

    async def append_in(
        self,
        tx: Transaction,
        stream_id: str,
        aggregate_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        outbox: Sequence[OutboxMessage] = (),
        hook: TransactionHook | None = None,
    ) -> int:
        """Append inside the caller's transaction (for callers that do more in the same one)."""
        if events or outbox or expected_version > 0:
            try:
                current = await tx.driver.fetchval(
                    _APPEND,
                    stream_id,
                    expected_version,
                    aggregate_type,
                    [e.event_id for e in events],
                    [e.event_type for e in events],
                    [e.schema_version for e in events],
                    [e.occurred_at for e in events],
                    [json.dumps(e.data, separators=(",", ":")) for e in events],
                    [json.dumps(e.metadata, separators=(",", ":")) for e in events],
                    *outbox_columns(outbox),
                )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "events_pkey":
                    raise ConcurrencyConflict(stream_id, expected_version) from exc
                raise
            if current != expected_version:
                raise ConcurrencyConflict(stream_id, expected_version, current)
        if hook is not None:
            await hook(tx.conn)
        return expected_version + len(events)

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[StoredEvent]:
        async with driver_connection(self.engine) as driver:
            rows = await driver.fetch(_READ_STREAM, stream_id, from_version)
        return [StoredEvent(*row) for row in rows]

    async def stream_version(self, stream_id: str) -> int:
        async with driver_connection(self.engine) as driver:
            return int(await driver.fetchval(_STREAM_VERSION, stream_id))


# The stream's version is read in the statement's snapshot; when it is not the expected one nothing is
# inserted (the caller raises a conflict). Two appends racing past that check collide on events_pkey.
_APPEND = """
WITH current_version AS (
    SELECT coalesce(max(stream_version), 0) AS version FROM events WHERE stream_id = $1
), appended AS (
    INSERT INTO events (stream_id, stream_version, aggregate_type, event_id, event_type, schema_version,
                        occurred_at, data, metadata)
    SELECT $1, $2 + e.n, $3, e.event_id, e.event_type, e.schema_version, e.occurred_at, e.data, e.metadata
      FROM unnest($4::uuid[], $5::text[], $6::int[], $7::timestamptz[], $8::jsonb[], $9::jsonb[])
           WITH ORDINALITY AS e(event_id, event_type, schema_version, occurred_at, data, metadata, n),
           current_version
     WHERE current_version.version = $2
    RETURNING 1
), published AS (
    INSERT INTO outbox (message_id, topic, key, value, headers)
    SELECT m.message_id, m.topic, m.key, m.value, m.headers
      FROM unnest($10::uuid[], $11::text[], $12::text[], $13::bytea[], $14::jsonb[])
           AS m(message_id, topic, key, value, headers),
           current_version
     WHERE current_version.version = $2
)
SELECT version FROM current_version
"""
_READ_STREAM = (
    "SELECT position, stream_id, stream_version, aggregate_type, event_id, event_type, schema_version, "
    "occurred_at, data, metadata, recorded_at FROM events "
    "WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version"
)
_STREAM_VERSION = "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1"


class InMemoryEventStore:
    """A fake with the same contract, for unit tests of handlers (see the contract tests)."""

    def __init__(self) -> None:
        self.streams: dict[str, list[StoredEvent]] = {}
        self.outbox: list[OutboxMessage] = []
        self._position = 0
        self._event_ids: set[uuid.UUID] = set()

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Nothing to hold: every append is atomic on its own (the fake has no reads to isolate)."""
        return contextlib.nullcontext()

    async def append(
        self,
        stream_id: str,
        aggregate_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        outbox: Sequence[OutboxMessage] = (),
        hook: TransactionHook | None = None,
        tx: Any = None,
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
