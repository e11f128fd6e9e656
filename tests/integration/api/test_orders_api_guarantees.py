"""The orders API, served in-process (httpx ASGI transport) on a real PostgreSQL database.

Concurrency at one aggregate (If-Match → exactly one winner, no gaps), ETags, and Idempotency-Key on
the service's read-before-create ``POST /orders``. Kafka is not needed: nothing here is relayed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from orders.__main__ import DEFINITION
from orders.application.credit_terms import CreditTermsProjector
from orders.config import OrdersSettings
from shared.events import customers as customer_events
from shared.events.envelope import Envelope
from shared.runtime import Container
from shared.settings import DEV_API_TOKENS

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer dev-admin"}
assert "dev-admin" in DEV_API_TOKENS


async def register_customer(container: Container[Any], customer_id: str) -> None:
    """What the orders consumer does when crm.customers.v1 says a customer registered."""
    event = customer_events.CustomerRegistered(customer_id=customer_id, company_name="Acme Trading", region="East")
    envelope = Envelope.wrap(
        event,
        producer="customers",
        aggregate_type="customer",
        aggregate_id=customer_id,
        aggregate_version=1,
        customer_id=customer_id,
        correlation_id="test-seed",
    )
    async with container.engine.begin() as conn:
        await CreditTermsProjector().apply(conn, [envelope])


@pytest.fixture
async def orders(database_factory) -> AsyncIterator[tuple[httpx.AsyncClient, Container[Any]]]:  # type: ignore[no-untyped-def]
    settings = OrdersSettings(database_url=await database_factory("orders"), TIERSTREAM_ENV="test")
    container = DEFINITION.container(settings)
    app = DEFINITION.build_api(container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders", headers=ADMIN, timeout=30) as client:
        yield client, container
    await container.close()


def order_body(customer_id: str, order_id: str, unit_price: str = "100.00", quantity: int = 10) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "order_id": order_id,
        "lines": [{"sku": "SKU-1", "description": "goods", "quantity": quantity, "unit_price": unit_price}],
    }


async def test_ten_concurrent_commands_with_one_if_match_one_wins_nine_get_409_and_the_stream_has_no_gap(
    orders: tuple[httpx.AsyncClient, Container[Any]],
) -> None:
    client, container = orders
    await register_customer(container, "c-race")
    placed = await client.post("/orders", json=order_body("c-race", "o-race"))
    assert placed.status_code == 201, placed.text
    etag = placed.headers["ETag"]
    assert etag == f'"{placed.json()["version"]}"'

    async def return_one(n: int) -> httpx.Response:
        body = {"amount": "1.00", "reason": f"damaged box {n}", "return_id": f"r-{n}"}
        return await client.post("/orders/o-race/returns", json=body, headers={"If-Match": etag})

    answers = await asyncio.gather(*(return_one(n) for n in range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 9, [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 200)
    assert winner.headers["ETag"] == f'"{winner.json()["version"]}"'
    assert all(a.json()["code"] == "version_conflict" for a in answers if a.status_code == 409)

    events = (await client.get("/orders/o-race/events")).json()
    versions = [e["stream_version"] for e in events]
    assert versions == list(range(1, len(versions) + 1))
    assert sum(e["event_type"] == "OrderReturned" for e in events) == 1
    async with container.engine.connect() as conn:
        outbox = await conn.scalar(text("SELECT count(*) FROM outbox"))
    assert outbox == len(events)

    # the loser retries with the fresh ETag and wins
    retry = await client.post(
        "/orders/o-race/returns",
        json={"amount": "1.00", "reason": "retry", "return_id": "r-retry"},
        headers={"If-Match": winner.headers["ETag"]},
    )
    assert retry.status_code == 200, retry.text


async def test_a_retried_place_order_replays_the_201_instead_of_already_exists(
    orders: tuple[httpx.AsyncClient, Container[Any]],
) -> None:
    client, container = orders
    await register_customer(container, "c-idem")
    body = order_body("c-idem", "o-idem")
    first = await client.post("/orders", json=body, headers={"Idempotency-Key": "erp-invoice-42"})
    retry = await client.post("/orders", json=body, headers={"Idempotency-Key": "erp-invoice-42"})
    assert first.status_code == retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert retry.headers["Idempotency-Replayed"] == "true"
    other = await client.post(
        "/orders", json=order_body("c-idem", "o-idem-2"), headers={"Idempotency-Key": "erp-invoice-42"}
    )
    assert other.status_code == 422
    async with container.engine.connect() as conn:
        streams = await conn.scalar(text("SELECT count(DISTINCT stream_id) FROM events"))
    assert streams == 1


async def test_reads_of_one_order_carry_its_version_as_etag_and_need_a_read_scope(
    orders: tuple[httpx.AsyncClient, Container[Any]],
) -> None:
    client, container = orders
    await register_customer(container, "c-read")
    await client.post("/orders", json=order_body("c-read", "o-read"))
    read = await client.get("/orders/o-read", headers={"Authorization": "Bearer dev-dashboard"})
    assert read.status_code == 200
    assert read.headers["ETag"] == f'"{read.json()["version"]}"'
    assert (await client.get("/orders/o-read", headers={"Authorization": ""})).status_code == 401
    refused = await client.post(
        "/orders", json=order_body("c-read", "o-read-2"), headers={"Authorization": "Bearer dev-dashboard"}
    )
    assert refused.status_code == 403 and refused.json()["missing_scope"] == "orders:write"


async def test_an_order_id_already_taken_is_409_with_nothing_appended_and_the_credit_position_unchanged(
    orders: tuple[httpx.AsyncClient, Container[Any]],
) -> None:
    client, container = orders
    await register_customer(container, "c-dup")
    first = await client.post("/orders", json=order_body("c-dup", "o-dup"))
    assert first.status_code == 201, first.text
    again = await asyncio.gather(*(client.post("/orders", json=order_body("c-dup", "o-dup", "7.00")) for _ in range(5)))
    assert [a.status_code for a in again] == [409] * 5, [a.text for a in again]
    assert all("already exists" in a.json()["detail"] for a in again)
    async with container.engine.connect() as conn:
        events = await conn.scalar(text("SELECT count(*) FROM events"))
        outbox = await conn.scalar(text("SELECT count(*) FROM outbox"))
        receivable = (await conn.execute(text("SELECT total, order_version FROM receivables"))).one()
        credit_version = await conn.scalar(text("SELECT credit_version FROM customer_credit"))
    assert events == outbox == first.json()["version"]
    assert tuple(receivable) == (1000, first.json()["version"])  # the first order's, untouched
    assert credit_version == 2  # registered + one order placed; the refused ones rolled back


async def test_concurrent_placements_of_one_order_id_for_different_customers_have_one_winner(
    orders: tuple[httpx.AsyncClient, Container[Any]],
) -> None:
    client, container = orders
    for n in range(6):
        await register_customer(container, f"c-{n}")
    answers = await asyncio.gather(*(client.post("/orders", json=order_body(f"c-{n}", "o-shared")) for n in range(6)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5, [a.text for a in answers]
    async with container.engine.connect() as conn:
        streams = (await conn.execute(text("SELECT stream_id, max(stream_version) FROM events GROUP BY 1"))).all()
        receivables = await conn.scalar(text("SELECT count(*) FROM receivables"))
    assert [s for s, _ in streams] == ["order-o-shared"]
    assert receivables == 1
