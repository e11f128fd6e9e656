"""How the PostgreSQL event store binds an append: one parameter per value for small appends, one array
per column beyond, hooks' parameters numbered after both (statement text and arguments, no database)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.eventsourcing.append_sql import EVENT_COLUMNS, MESSAGE_COLUMNS, ROWS_AS_PARAMETERS
from shared.eventsourcing.store import NewEvent, PostgresEventStore, StatementHook
from shared.messaging.outbox import OutboxMessage

pytestmark = pytest.mark.unit


class RecordingDriver:
    """Answers the append statement as PostgreSQL would when the stream is at the expected version."""

    def __init__(self, gates: int = 0) -> None:
        self.gates = gates
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def is_in_transaction(self) -> bool:
        return False

    async def fetchrow(self, sql: str, *args: Any) -> tuple[Any, ...]:
        self.calls.append((sql, args))
        return (args[1], *[True] * self.gates)


class FakeTransaction:
    def __init__(self, driver: RecordingDriver) -> None:
        self.driver = driver


def events(n: int) -> list[NewEvent]:
    return [
        NewEvent("Thing", 1, {"n": i}, datetime(2026, 1, 1, tzinfo=UTC), {"k": i}, uuid.UUID(int=i + 1))
        for i in range(n)
    ]


def messages(n: int) -> list[OutboxMessage]:
    return [
        OutboxMessage(f"t{i}", f"k{i}", f"v{i}".encode(), (("h", str(i)),), uuid.UUID(int=100 + i)) for i in range(n)
    ]


async def append(
    n_events: int, n_messages: int, hook: StatementHook | None = None, gates: int = 0
) -> tuple[str, tuple[Any, ...]]:
    driver = RecordingDriver(gates)
    store = PostgresEventStore(engine=None)  # append_in needs no engine
    await store.append_in(FakeTransaction(driver), "s-1", "thing", 0, events(n_events), messages(n_messages), hook)
    [call] = driver.calls
    return call


def highest_parameter(sql: str) -> int:
    return max(int(n) for n in re.findall(r"\$(\d+)", sql))


@pytest.mark.parametrize(("n_events", "n_messages"), [(1, 1), (2, 2), (1, 0), (ROWS_AS_PARAMETERS, ROWS_AS_PARAMETERS)])
async def test_a_small_append_binds_each_value_as_a_parameter_of_its_own(n_events: int, n_messages: int) -> None:
    sql, args = await append(n_events, n_messages)

    assert "unnest" not in sql
    assert highest_parameter(sql) == len(args) == 3 + n_events * len(EVENT_COLUMNS) + n_messages * len(MESSAGE_COLUMNS)
    first_event = args[3 : 3 + len(EVENT_COLUMNS)]
    assert first_event == (uuid.UUID(int=1), "Thing", 1, datetime(2026, 1, 1, tzinfo=UTC), '{"n":0}', '{"k":0}')
    if n_messages:
        first_message = args[3 + n_events * len(EVENT_COLUMNS) :][: len(MESSAGE_COLUMNS)]
        assert first_message == (uuid.UUID(int=100), "t0", "k0", b"v0", '[["h","0"]]')


async def test_the_rows_of_a_small_append_are_numbered_for_their_stream_versions() -> None:
    sql, _ = await append(2, 2)

    assert "$4::uuid, $5::text, $6::int, $7::timestamptz, $8::jsonb, $9::jsonb, 1)" in sql
    assert "$10::uuid, $11::text, $12::int, $13::timestamptz, $14::jsonb, $15::jsonb, 2)" in sql


@pytest.mark.parametrize(("n_events", "n_messages"), [(ROWS_AS_PARAMETERS + 1, 1), (1, ROWS_AS_PARAMETERS + 1), (0, 0)])
async def test_a_large_append_or_one_of_no_event_binds_one_array_per_column(n_events: int, n_messages: int) -> None:
    hook = StatementHook("INSERT INTO t (a) SELECT $1 WHERE {proceed}", ("a",))

    sql, args = await append(n_events, n_messages, hook)

    assert "unnest" in sql
    assert len(args) == 3 + len(EVENT_COLUMNS) + len(MESSAGE_COLUMNS) + 1
    assert [len(column) for column in args[3 : 3 + len(EVENT_COLUMNS)]] == [n_events] * len(EVENT_COLUMNS)
    assert [len(column) for column in args[3 + len(EVENT_COLUMNS) : -1]] == [n_messages] * len(MESSAGE_COLUMNS)


@pytest.mark.parametrize(("n_events", "n_messages"), [(1, 1), (2, 0), (ROWS_AS_PARAMETERS + 2, 3)])
async def test_a_hooks_parameters_follow_the_rows_and_keep_their_order(n_events: int, n_messages: int) -> None:
    gate = StatementHook(
        "UPDATE c SET v = v + 1 WHERE id = $1 AND v = $2 AND {proceed} RETURNING 1", ("c-1", 7), refused=RuntimeError
    )

    sql, args = await append(n_events, n_messages, gate, gates=1)

    shifted = re.search(r"WHERE id = \$(\d+) AND v = \$(\d+)", sql)
    assert shifted is not None
    assert (args[int(shifted[1]) - 1], args[int(shifted[2]) - 1]) == ("c-1", 7)
    assert highest_parameter(sql) == len(args)
