"""The rebuild's table comparison on its own (no replay): a live fact table against its copy in a rebuild
schema — equal copies match; a changed, a missing and an extra row each show once, by key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from segmentation.application.rebuild import _compare_table

pytestmark = pytest.mark.integration

SCHEMA = "rebuild_compare"
INSERT = (
    "INSERT INTO {schema}.customer_orders (customer_id, order_id, placed_at, amount, currency, cancelled, "
    "cancelled_amount, returned_amount, credit_held, overdue_amount, paid_in_full) "
    "VALUES (:c, :o, :at, :amount, 'CNY', false, 0, 0, false, 0, false)"
)
AT = datetime(2026, 1, 5, tzinfo=UTC)


async def insert(conn, schema: str, rows: list[tuple[str, str, int]]) -> None:
    for customer, order, amount in rows:
        await conn.execute(text(INSERT.format(schema=schema)), {"c": customer, "o": order, "at": AT, "amount": amount})


async def test_the_table_comparison_matches_equal_copies_and_names_each_differing_row_once(database_factory) -> None:
    engine = create_async_engine(await database_factory("segmentation"))
    try:
        common = [("c-1", "o-1", 10), ("c-1", "o-2", 20), ("c-2", "o-3", 30)]
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            await conn.execute(
                text(f"CREATE TABLE {SCHEMA}.customer_orders (LIKE public.customer_orders INCLUDING ALL)")
            )
            await insert(conn, "public", common)
            await insert(conn, SCHEMA, common)
        async with engine.connect() as conn:
            same = await _compare_table(conn, SCHEMA, "customer_orders")
        assert same.equal and same.differing_keys == []
        assert (same.live_rows, same.rebuilt_rows) == (3, 3)
        assert same.live_checksum == same.rebuilt_checksum

        async with engine.begin() as conn:
            await conn.execute(text("UPDATE customer_orders SET amount = 11 WHERE order_id = 'o-1'"))  # changed
            await conn.execute(text(f"DELETE FROM {SCHEMA}.customer_orders WHERE order_id = 'o-3'"))  # missing
            await insert(conn, SCHEMA, [("c-3", "o-4", 40)])  # only rebuilt
        async with engine.connect() as conn:
            differing = await _compare_table(conn, SCHEMA, "customer_orders")
        assert not differing.equal
        assert differing.table == "customer_orders"
        assert (differing.live_rows, differing.rebuilt_rows) == (3, 3)
        assert differing.live_checksum != differing.rebuilt_checksum
        assert differing.differing_keys == ["c-1/o-1", "c-2/o-3", "c-3/o-4"]
    finally:
        await engine.dispose()
