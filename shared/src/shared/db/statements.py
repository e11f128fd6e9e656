"""Plain SQL for hot paths, built once from SQLAlchemy tables (the driver prepares it per connection)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.dialect()


def upsert_sql(
    table: Table,
    columns: Sequence[str],
    *,
    key: Sequence[str],
    touch: str | None = None,
    only_if: str | None = None,
    condition: str = "{proceed}",
) -> str:
    """``INSERT INTO table (columns) SELECT $1…$n WHERE condition ON CONFLICT (key) DO UPDATE …``.

    Every parameter is cast to its column's type (an INSERT … SELECT does not infer them); the update
    sets every non-key column from EXCLUDED, ``touch`` (e.g. ``updated_at``) to now(), and applies only
    ``only_if`` (SQL over ``table`` and ``EXCLUDED``) when given. ``condition`` defaults to the marker of a
    :class:`shared.eventsourcing.store.StatementHook`."""
    values = ", ".join(f"${n}::{table.c[c].type.compile(dialect=_DIALECT)}" for n, c in enumerate(columns, start=1))
    updates = [f"{c} = EXCLUDED.{c}" for c in columns if c not in key]
    if touch is not None:
        updates.append(f"{touch} = now()")
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {values} WHERE {condition} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(updates)}"
    )
    return sql if only_if is None else f"{sql} WHERE {only_if}"
