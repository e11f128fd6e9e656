"""The event store port and its two implementations (PostgreSQL and an in-memory fake).

``append`` writes a stream's new events *and* their outbox messages in one transaction; a stream that
moved past ``expected_version`` raises :class:`ConcurrencyConflict` (the primary key on
(stream_id, stream_version) turns a race into a unique violation — never a silent overwrite).

Work that must commit with the events comes as hooks. A :class:`StatementHook` (one SQL write, e.g. a
read model's upsert or the idempotency key) is folded into the append statement itself, so a command
whose hooks are all statements costs ONE round trip and no BEGIN/COMMIT; any other hook is a coroutine
run on the transaction's SQLAlchemy connection after the append.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db.engine import Transaction, connection, driver_connection, driver_of, transaction
from shared.eventsourcing.append_sql import PROCEED as PROCEED
from shared.eventsourcing.append_sql import append_sql, rows_shape, standalone
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


@dataclass(frozen=True, slots=True)
class StatementHook:
    """One SQL write that commits with the append: PostgreSQL folds it into the append statement.

    ``sql`` is an INSERT / UPDATE / DELETE with its own ``$1…$n`` parameters (``args``) and the marker
    ``{proceed}`` where its WHERE condition allows writing: inside the append statement that condition
    is "the stream is at the expected version and every gate passed", so a refused append writes
    nothing at all. Two rules keep it one atomic statement: a hook must not touch a row another part of
    the same append writes, and one that can be refused is a *gate*: its SQL returns a row (``RETURNING
    1``) when it wrote, and ``refused()`` is raised when it did not — then nothing else is written.
    ``conflicts`` maps a unique constraint's name to the error a violation of it means (the whole
    statement then fails; nothing is written).

    Called with a connection (``await hook(conn)``) it runs on its own, in that connection's
    transaction, so it is still a :data:`TransactionHook` for stores that do not fold it (fakes)."""

    sql: str
    args: tuple[Any, ...] = ()
    refused: Callable[[], Exception] | None = None
    conflicts: tuple[tuple[str, Callable[[], Exception]], ...] = ()

    @property
    def is_gate(self) -> bool:
        return self.refused is not None

    async def __call__(self, conn: AsyncConnection) -> None:
        driver = await driver_of(conn)
        try:
            wrote = await driver.fetchval(standalone(self.sql), *self.args)
        except asyncpg.UniqueViolationError as exc:
            error = self.conflict_error(exc)
            if error is exc:
                raise
            raise error from exc
        if self.refused is not None and wrote is None:
            raise self.refused()

    def conflict_error(self, exc: asyncpg.UniqueViolationError) -> BaseException:
        for constraint, error in self.conflicts:
            if exc.constraint_name == constraint:
                return error()
        return exc


class HookChain:
    """Several hooks run in order as one (what :func:`chain_hooks` returns); stores may look inside."""

    __slots__ = ("hooks",)

    def __init__(self, hooks: Sequence[TransactionHook]) -> None:
        self.hooks = tuple(hooks)

    async def __call__(self, conn: AsyncConnection) -> None:
        for hook in self.hooks:
            await hook(conn)


def chain_hooks(*hooks: TransactionHook | None) -> TransactionHook | None:
    """One hook running the given ones in order (None when there are none)."""
    present = list(_flatten(hooks))
    if len(present) <= 1:
        return present[0] if present else None
    return HookChain(present)


def _flatten(hooks: Sequence[TransactionHook | None]) -> Iterator[TransactionHook]:
    for hook in hooks:
        if isinstance(hook, HookChain):
            yield from _flatten(hook.hooks)
        elif hook is not None:
            yield hook


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

    def connection(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """One connection without a transaction, for a command's reads and its (atomic) append (as ``tx``)."""
        ...

    async def read_stream(self, stream_id: str, from_version: int = 1, *, tx: Any = None) -> list[StoredEvent]: ...

    async def stream_version(self, stream_id: str) -> int: ...


class PostgresEventStore:
    """The event store on PostgreSQL, through the asyncpg driver (prepared statements, no SQL compilation).

    An append is one statement: it checks the stream's version, inserts the events and their outbox rows
    (data-modifying CTEs over ``unnest`` arrays) and runs the :class:`StatementHook` s, so a command costs
    the same round trips for one event or ten. Other hooks then run on the same transaction's SQLAlchemy
    connection. Without other hooks and without a caller's transaction the statement runs on its own
    (autocommit: one round trip, atomic as every statement is)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """One transaction for a command that reads and appends together (pass it as ``tx``)."""
        return transaction(self.engine)

    def connection(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """One connection, no transaction, for a command that reads and then appends (pass it as ``tx``):
        its reads and its append each commit on their own, the append atomically."""
        return connection(self.engine)

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
        async with connection(self.engine) as own:
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
        """Append on the caller's connection: in its transaction if one is open, else in one of its own
        when a hook other than a :class:`StatementHook` must commit with the append."""
        statements: list[StatementHook] = []
        others: list[TransactionHook] = []
        for h in _flatten((hook,)):
            if isinstance(h, StatementHook):
                statements.append(h)
            else:
                others.append(h)
        if not others or tx.driver.is_in_transaction():
            await self._append(tx, stream_id, aggregate_type, expected_version, events, outbox, statements, others)
        else:
            async with tx.driver.transaction():
                await self._append(tx, stream_id, aggregate_type, expected_version, events, outbox, statements, others)
        return expected_version + len(events)

    async def _append(
        self,
        tx: Transaction,
        stream_id: str,
        aggregate_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        outbox: Sequence[OutboxMessage],
        statements: Sequence[StatementHook],
        others: Sequence[TransactionHook],
    ) -> None:
        if events or outbox or statements or expected_version > 0:
            rows = rows_shape(len(events), len(outbox))
            args = _append_args(stream_id, expected_version, aggregate_type, events, outbox, by_row=rows is not None)
            for statement in statements:
                args.extend(statement.args)
            sql = append_sql((tuple((s.sql, s.is_gate) for s in statements), rows))
            try:
                row = await tx.driver.fetchrow(sql, *args)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "events_pkey":
                    raise ConcurrencyConflict(stream_id, expected_version) from exc
                for statement in statements:
                    error = statement.conflict_error(exc)
                    if error is not exc:
                        raise error from exc
                raise
            assert row is not None
            if row[0] != expected_version:
                raise ConcurrencyConflict(stream_id, expected_version, row[0])
            gates = (s for s in statements if s.refused is not None)
            for passed, gate in zip(row[1:], gates, strict=True):
                if not passed:
                    assert gate.refused is not None
                    raise gate.refused()
        if others:
            conn = await tx.sqlalchemy()
            for other in others:
                await other(conn)

    async def read_stream(
        self, stream_id: str, from_version: int = 1, *, tx: Transaction | None = None
    ) -> list[StoredEvent]:
        if tx is not None:
            rows = await tx.driver.fetch(_READ_STREAM, stream_id, from_version)
        else:
            async with driver_connection(self.engine) as driver:
                rows = await driver.fetch(_READ_STREAM, stream_id, from_version)
        return [StoredEvent(*row) for row in rows]

    async def stream_version(self, stream_id: str) -> int:
        async with driver_connection(self.engine) as driver:
            return int(await driver.fetchval(_STREAM_VERSION, stream_id))


def _append_args(
    stream_id: str,
    expected_version: int,
    aggregate_type: str,
    events: Sequence[NewEvent],
    outbox: Sequence[OutboxMessage],
    *,
    by_row: bool,
) -> list[Any]:
    """The append statement's parameters before the hooks' (see :mod:`shared.eventsourcing.append_sql`):
    the head, then the events' and the messages' columns, row by row or one array per column."""
    event_columns = (
        [e.event_id for e in events],
        [e.event_type for e in events],
        [e.schema_version for e in events],
        [e.occurred_at for e in events],
        [json.dumps(e.data, separators=(",", ":")) for e in events],
        [json.dumps(e.metadata, separators=(",", ":")) for e in events],
    )
    message_columns = outbox_columns(outbox)
    args: list[Any] = [stream_id, expected_version, aggregate_type]
    if by_row:
        for columns in (event_columns, message_columns):
            for row in zip(*columns, strict=True):
                args.extend(row)
    else:
        args.extend(event_columns)
        args.extend(message_columns)
    return args


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

    def connection(self) -> contextlib.AbstractAsyncContextManager[None]:
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

    async def read_stream(self, stream_id: str, from_version: int = 1, *, tx: Any = None) -> list[StoredEvent]:
        return [e for e in self.streams.get(stream_id, []) if e.stream_version >= from_version]

    async def stream_version(self, stream_id: str) -> int:
        return len(self.streams.get(stream_id, []))
