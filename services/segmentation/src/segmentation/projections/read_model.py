"""The ``customer_segments`` table: one row per customer, readable by dashboards and analysts (SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentation.domain.customer_view import CustomerView

metadata = MetaData()

customer_segments = Table(
    "customer_segments",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("registered", Boolean, nullable=False),
    Column("company_name", Text),
    Column("region", Text),
    Column("stage", Text),
    Column("orders_count", Integer, nullable=False),
    Column("cancelled_orders", Integer, nullable=False),
    Column("gross_revenue", Numeric(18, 4), nullable=False),
    Column("cancelled_amount", Numeric(18, 4), nullable=False),
    Column("returned_amount", Numeric(18, 4), nullable=False),
    Column("net_revenue", Numeric(18, 4), nullable=False),
    Column("currency", Text),
    Column("first_order_at", DateTime(timezone=True)),
    Column("last_order_at", DateTime(timezone=True)),
    Column("complaints_total", Integer, nullable=False),
    Column("open_complaints", Integer, nullable=False),
    Column("value_tier", Text, nullable=False),
    Column("events_applied", Integer, nullable=False),
    Column("last_event_at", DateTime(timezone=True)),
    Column("segmentation_version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

_VIEW_FIELDS = [f.name for f in fields(CustomerView)]


def _row(view: CustomerView) -> dict[str, object]:
    row = {name: getattr(view, name) for name in _VIEW_FIELDS}
    row["net_revenue"] = view.net_revenue
    return row


async def load_views(conn: AsyncConnection, customer_ids: Sequence[str], *, lock: bool) -> dict[str, CustomerView]:
    query = select(*(customer_segments.c[name] for name in _VIEW_FIELDS)).where(
        customer_segments.c.customer_id.in_(customer_ids)
    )
    if lock:
        query = query.with_for_update()
    rows = (await conn.execute(query)).mappings()
    return {row["customer_id"]: CustomerView(**row) for row in rows}


async def save_views(conn: AsyncConnection, views: Sequence[CustomerView]) -> None:
    if not views:
        return
    stmt = insert(customer_segments)
    updates = {name: stmt.excluded[name] for name in [*_VIEW_FIELDS, "net_revenue"] if name != "customer_id"}
    updates["updated_at"] = func.now()
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["customer_id"], set_=updates), [_row(v) for v in views]
    )


async def get_view(conn: AsyncConnection, customer_id: str) -> dict[str, object] | None:
    row = (
        (await conn.execute(select(customer_segments).where(customer_segments.c.customer_id == customer_id)))
        .mappings()
        .first()
    )
    return dict(row) if row else None
