"""The thinnest HTTP endpoint that does the orders API's writes: the ceiling pass of ``command_throughput.py``.

    CEILING_DSN=postgresql://… uv run python -m uvicorn --app-dir benchmarks ceiling_app:app --port P

``POST /orders`` validates a body shaped like the API's (pydantic, through FastAPI) and inserts an events row
and an outbox row copied from what the real API stored, in one asyncpg transaction, as the raw pass does.
No auth, no middleware, no domain, no envelope, no idempotency. What this reaches on a machine bounds
what any FastAPI service making those writes per command can reach there; the ratio of the two to the
raw inserts says how much of the gap is the framework and the machine, and how much the service's own work.
Not part of the product; nothing imports it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import asyncpg
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel

#: The rows copied (what the API stored) and the two inserts; the raw pass of ``command_throughput`` uses them too.
TEMPLATE_EVENT = (
    "SELECT event_type, schema_version, data::text AS data, metadata::text AS metadata FROM events "
    "WHERE event_type = 'OrderPlaced' LIMIT 1"
)
TEMPLATE_OUTBOX = "SELECT topic, key, value, headers::text AS headers FROM outbox LIMIT 1"
INSERT_EVENT = (
    "INSERT INTO events (stream_id, stream_version, aggregate_type, event_id, event_type, "
    "schema_version, occurred_at, data, metadata) "
    "VALUES ($1, 1, 'order', $2, $3, $4, now(), $5::jsonb, $6::jsonb)"
)
INSERT_OUTBOX = "INSERT INTO outbox (message_id, topic, key, value, headers) VALUES ($1, $2, $3, $4, $5::jsonb)"


class Line(BaseModel):
    sku: str
    description: str | None = None
    quantity: int
    unit_price: Decimal


class PlaceOrder(BaseModel):
    customer_id: str
    order_id: str
    lines: list[Line]


class _State:
    pool: asyncpg.Pool
    event: asyncpg.Record
    outbox: asyncpg.Record


state = _State()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    dsn = os.environ["CEILING_DSN"]
    conn = await asyncpg.connect(dsn)
    try:
        event, outbox = await conn.fetchrow(TEMPLATE_EVENT), await conn.fetchrow(TEMPLATE_OUTBOX)
    finally:
        await conn.close()
    if event is None or outbox is None:
        raise RuntimeError("the database holds no OrderPlaced row and outbox row to copy (run the API first)")
    state.event, state.outbox = event, outbox
    state.pool = await asyncpg.create_pool(dsn, min_size=16, max_size=16)
    yield
    await state.pool.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.post("/orders", status_code=201)
async def place(body: PlaceOrder) -> Response:
    event, outbox, event_id = state.event, state.outbox, uuid.uuid4()
    async with state.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            INSERT_EVENT,
            f"order-{body.order_id}",
            event_id,
            event["event_type"],
            event["schema_version"],
            event["data"],
            event["metadata"],
        )
        await conn.execute(INSERT_OUTBOX, event_id, outbox["topic"], outbox["key"], outbox["value"], outbox["headers"])
    return Response(json.dumps({"order_id": body.order_id}), status_code=201, media_type="application/json")
