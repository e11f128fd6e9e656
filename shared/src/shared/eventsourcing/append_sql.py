"""The one statement that appends to a stream (:class:`~shared.eventsourcing.store.PostgresEventStore`).

It checks the stream's version, inserts the events and their outbox rows (data-modifying CTEs) and
folds in the statement hooks; the answer is the stream's version, then one "passed" flag per gate.

Its text depends on the hooks' shape and on how the rows are bound, and is built once per shape. A small
append (a command's one or two events) binds each value as a parameter of its own (``VALUES`` rows);
a larger one binds one array per column (``unnest``), whatever its size. Arrays cost the driver ~10 µs
more per statement to encode (abstract-base-class checks per array and per element: a tenth of the
append's client CPU), while rows give a statement per row count and PostgreSQL's 65,535 parameters cap
their number — hence rows up to :data:`ROWS_AS_PARAMETERS`, arrays beyond.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: ``{proceed}`` in a statement hook's SQL: the condition under which it may write.
PROCEED = "{proceed}"
#: Appends of at most this many events and outbox messages bind one parameter per value.
ROWS_AS_PARAMETERS = 4
#: Columns bound per event and per outbox message, in parameter order, with their PostgreSQL types.
EVENT_COLUMNS = (
    ("event_id", "uuid"),
    ("event_type", "text"),
    ("schema_version", "int"),
    ("occurred_at", "timestamptz"),
    ("data", "jsonb"),
    ("metadata", "jsonb"),
)
MESSAGE_COLUMNS = (("message_id", "uuid"), ("topic", "text"), ("key", "text"), ("value", "bytea"), ("headers", "jsonb"))
#: $1 stream id, $2 expected version, $3 aggregate type; the rows' parameters follow.
HEAD_PARAMETERS = 3

#: (statement hooks as (sql, is_gate), rows per parameter as (events, messages) or None for arrays)
Shape = tuple[tuple[tuple[str, bool], ...], tuple[int, int] | None]

# The stream's version is read in the statement's snapshot; when it is not the expected one nothing is
# inserted (the caller raises a conflict). Two appends racing past that check collide on events_pkey.
# ``proceed`` (the version matches and every gate wrote) is what lets the inserts and other hooks write.
_HEAD = """
WITH current_version AS (
    SELECT coalesce(max(stream_version), 0) AS version FROM events WHERE stream_id = $1
)"""
_EVENTS = """, appended AS (
    INSERT INTO events (stream_id, stream_version, aggregate_type, event_id, event_type, schema_version,
                        occurred_at, data, metadata)
    SELECT $1, $2 + e.n, $3, e.event_id, e.event_type, e.schema_version, e.occurred_at, e.data, e.metadata
      FROM {source}
     WHERE (SELECT ok FROM proceed)
)"""
_MESSAGES = """, published AS (
    INSERT INTO outbox (message_id, topic, key, value, headers)
    SELECT m.message_id, m.topic, m.key, m.value, m.headers
      FROM {source}
     WHERE (SELECT ok FROM proceed)
)"""
_PARAMETER = re.compile(r"\$(\d+)")
_cache: dict[Shape, str] = {}


def rows_shape(events: int, messages: int) -> tuple[int, int] | None:
    """How an append of so many events and messages binds them: row counts, or None for arrays (also
    for an append of no event, whose statement would otherwise leave the aggregate type's $3 untyped)."""
    return (events, messages) if 0 < events <= ROWS_AS_PARAMETERS and messages <= ROWS_AS_PARAMETERS else None


def append_sql(shape: Shape) -> str:
    """The append statement of ``shape``: gates run when the version matches; everything else only
    when, besides, every gate wrote a row."""
    sql = _cache.get(shape)
    if sql is None:
        sql = _cache[shape] = _build(*shape)
    return sql


def standalone(sql: str) -> str:
    """A statement hook's SQL run on its own: nothing to wait for."""
    return sql.replace(PROCEED, "true")


def _build(hooks: tuple[tuple[str, bool], ...], rows: tuple[int, int] | None) -> str:
    if rows is None:
        events = _EVENTS.format(source=_unnest(EVENT_COLUMNS, HEAD_PARAMETERS + 1, "e", numbered=True))
        messages = _MESSAGES.format(source=_unnest(MESSAGE_COLUMNS, HEAD_PARAMETERS + 1 + len(EVENT_COLUMNS), "m"))
        offset = HEAD_PARAMETERS + len(EVENT_COLUMNS) + len(MESSAGE_COLUMNS)
    else:
        event_rows, message_rows = rows
        first_message = HEAD_PARAMETERS + 1 + event_rows * len(EVENT_COLUMNS)
        events = _EVENTS.format(source=_values(EVENT_COLUMNS, HEAD_PARAMETERS + 1, event_rows, "e", numbered=True))
        messages = _MESSAGES.format(source=_values(MESSAGE_COLUMNS, first_message, message_rows, "m"))
        messages = messages if message_rows else ""
        offset = first_message - 1 + message_rows * len(MESSAGE_COLUMNS)
    gates: list[str] = []
    writes: list[str] = []
    for n, (hook_sql, is_gate) in enumerate(hooks):
        shifted = _PARAMETER.sub(lambda m, base=offset: f"${int(m.group(1)) + base}", hook_sql)  # type: ignore[misc]
        offset += max((int(m) for m in _PARAMETER.findall(hook_sql)), default=0)
        if is_gate:
            condition = "(SELECT version = $2 FROM current_version)"
            gates.append(f", gate_{n} AS (\n{shifted.replace(PROCEED, condition)}\n)")
        else:
            writes.append(f", hook_{n} AS (\n{shifted.replace(PROCEED, '(SELECT ok FROM proceed)')}\n)")
    gate_names = [f"gate_{n}" for n, (_, is_gate) in enumerate(hooks) if is_gate]
    passed = "".join(f" AND EXISTS (SELECT 1 FROM {g})" for g in gate_names)
    flags = "".join(f", EXISTS (SELECT 1 FROM {g})" for g in gate_names)
    proceed = f", proceed AS (SELECT version = $2{passed} AS ok FROM current_version)"
    tail = f"\nSELECT (SELECT version FROM current_version){flags}"
    return "".join([_HEAD, *gates, proceed, events, messages, *writes, tail])


def _unnest(columns: Sequence[tuple[str, str]], first: int, alias: str, *, numbered: bool = False) -> str:
    arrays = ", ".join(f"${first + i}::{kind}[]" for i, (_, kind) in enumerate(columns))
    names = ", ".join([*(name for name, _ in columns), *(["n"] if numbered else [])])
    return f"unnest({arrays}){' WITH ORDINALITY' if numbered else ''} AS {alias}({names})"


def _values(columns: Sequence[tuple[str, str]], first: int, rows: int, alias: str, *, numbered: bool = False) -> str:
    width = len(columns)
    tuples = []
    for row in range(rows):
        values = [f"${first + row * width + i}::{kind}" for i, (_, kind) in enumerate(columns)]
        tuples.append(f"({', '.join([*values, *([str(row + 1)] if numbered else [])])})")
    names = ", ".join([*(name for name, _ in columns), *(["n"] if numbered else [])])
    return f"(VALUES {', '.join(tuples)}) AS {alias}({names})"
