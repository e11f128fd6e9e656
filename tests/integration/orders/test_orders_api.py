"""The orders HTTP API in-process (ASGI), on real PostgreSQL, with the credit-terms consumer reading a real
Kafka topic: a customer's whole order life — credit hold and release, payments, returns, cancellation,
overdue — as a caller sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from orders.entrypoints.api import build_api
from shared.events import customers
from shared.events.envelope import Money

pytestmark = pytest.mark.integration

AUTH = {"Authorization": "Bearer dev-admin"}


@pytest.fixture
async def client(orders_container, credit_consumer) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=build_api(orders_container))
    async with httpx.AsyncClient(transport=transport, base_url="http://orders", headers=AUTH) as http:
        yield http


def order_body(customer_id: str, order_id: str, *lines: tuple[str, int, str]) -> dict:  # type: ignore[type-arg]
    return {
        "customer_id": customer_id,
        "order_id": order_id,
        "lines": [
            {"sku": sku, "description": "goods", "category": "home", "quantity": qty, "unit_price": price}
            for sku, qty, price in lines
        ],
    }


def field_error(response: httpx.Response) -> tuple[int, str, tuple]:  # type: ignore[type-arg]
    body = response.json()
    [error] = body["detail"]
    return response.status_code, body["code"], tuple(error["loc"])


async def test_a_customer_order_life_through_the_api(
    client: httpx.AsyncClient, orders_container, feed_customer, eventually, clock
) -> None:  # type: ignore[no-untyped-def]
    # unknown until crm.customers.v1 tells orders about the customer
    response = await client.post("/orders", json=order_body("c-1", "o-1", ("A", 2, "100.00")))
    assert field_error(response) == (422, "unknown_customer", ("body", "customer_id"))
    await feed_customer(
        "c-1",
        customers.CustomerRegistered(customer_id="c-1", company_name="Acme", region="East"),
        customers.CustomerCreditTermsSet(
            credit_limit=Money(amount=Decimal("1000"), currency="CNY"), payment_days=30, rating="A"
        ),
    )

    async def known() -> bool:
        return (await client.get("/customers/c-1/credit")).status_code == 200

    await eventually(known)

    # an order dated in the future cannot have happened yet: 422 naming placed_at
    late = {**order_body("c-1", "o-0", ("A", 1, "1.00")), "placed_at": (clock() + timedelta(hours=1)).isoformat()}
    assert field_error(await client.post("/orders", json=late)) == (422, "in_the_future", ("body", "placed_at"))

    # within the limit → placed; totals computed from the lines; over the limit → held
    response = await client.post("/orders", json=order_body("c-1", "o-1", ("A", 2, "100.00"), ("B", 3, "50.00")))
    assert response.status_code == 201, response.text
    first = response.json()
    assert (first["status"], first["total"], first["outstanding"], first["due_date"]) == (
        "placed",
        "350.00",
        "350.00",
        "2026-03-31",
    )
    assert response.headers["etag"] == '"1"'
    response = await client.post("/orders", json=order_body("c-1", "o-2", ("C", 1, "700.00")))
    held = response.json()
    assert (response.status_code, held["status"]) == (201, "credit_held")
    assert held["credit_hold"] == {
        "on_hold": True,
        "reasons": ["over_credit_limit"],
        "exposure": {"amount": "1050.00", "currency": "CNY"},
        "credit_limit": {"amount": "1000.00", "currency": "CNY"},
    }
    assert (await client.post("/orders", json=order_body("c-1", "o-1", ("A", 1, "1")))).status_code == 409

    # release the hold (If-Match must name the current version)
    stale = await client.post("/orders/o-2/credit-release", json={"released_by": "ops-1"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
    released = await client.post(
        "/orders/o-2/credit-release", json={"released_by": "ops-1", "note": "prepaid"}, headers={"If-Match": '"2"'}
    )
    assert released.status_code == 200 and released.json()["status"] == "placed"
    assert (await client.post("/orders/o-2/credit-release", json={"released_by": "ops-1"})).status_code == 409

    # payments: partial, overpayment refused, full
    partial = await client.post("/orders/o-1/payments", json={"amount": "150.00", "payment_id": "pay-1"})
    assert partial.status_code == 200 and partial.json()["outstanding"] == "200.00"
    over = await client.post("/orders/o-1/payments", json={"amount": "200.01"})
    assert field_error(over) == (422, "overpayment", ("body", "amount"))
    assert (await client.post("/orders/o-1/payments", json={"amount": "1", "payment_id": "pay-1"})).status_code == 409
    wrong_currency = await client.post("/orders/o-1/payments", json={"amount": "1", "currency": "EUR"})
    assert field_error(wrong_currency) == (422, "currency_mismatch", ("body", "currency"))
    full = await client.post("/orders/o-1/payments", json={"amount": "200.00"})
    assert (full.json()["status"], full.json()["outstanding"], full.json()["paid"]) == ("paid", "0.00", "350.00")

    # returns by lines (valued at the order's prices) and by amount; too much is refused
    response = await client.post(
        "/orders/o-2/returns", json={"reason": "damaged", "return_id": "r-1", "lines": [{"sku": "C", "quantity": 1}]}
    )
    assert response.status_code == 200 and response.json()["returned"] == "700.00"
    assert response.json()["status"] == "returned"
    too_much = await client.post("/orders/o-1/returns", json={"reason": "x", "amount": "350.01"})
    assert field_error(too_much) == (422, "exceeds_returnable", ("body", "amount"))
    neither = await client.post("/orders/o-1/returns", json={"reason": "x"})
    assert neither.status_code == 422

    # cancellation: a paid order cannot be cancelled; a fresh one can
    assert (await client.post("/orders/o-1/cancellation", json={"reason": "x"})).status_code == 409
    await client.post("/orders", json=order_body("c-1", "o-3", ("D", 1, "10.00")))
    cancelled = await client.post("/orders/o-3/cancellation", json={"reason": "duplicate"}, headers={"If-Match": "1"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    # overdue: 10.00 unpaid on o-4, 95 days later the sweep reports it in 90+ and new orders are held
    await client.post("/orders", json=order_body("c-1", "o-4", ("E", 1, "10.00")))
    clock.advance(30 + 95)
    assert (await orders_container.parts["overdue_sweep"].run_once()).reported == 1  # the sweep role's job
    late = (await client.get("/orders/o-4")).json()
    assert (late["overdue_bucket"], late["outstanding"]) == ("90+", "10.00")
    response = await client.post("/orders", json=order_body("c-1", "o-5", ("F", 1, "1.00")))
    assert response.json()["credit_hold"]["reasons"] == ["receivables_overdue_60"]

    # reads: the stream, the customer's orders (paginated with the total), the credit position
    events = (await client.get("/orders/o-2/events")).json()
    assert [e["event_type"] for e in events] == [
        "OrderPlaced",
        "OrderCreditHeld",
        "OrderCreditReleased",
        "OrderReturned",
    ]
    page = (await client.get("/customers/c-1/orders", params={"limit": 2, "offset": 1})).json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (5, 2, 1, 2)
    everything = (await client.get("/customers/c-1/orders", params={"limit": 10})).json()["items"]
    assert {o["order_id"]: o["status"] for o in everything} == {
        "o-1": "paid",
        "o-2": "returned",
        "o-3": "cancelled",
        "o-4": "placed",
        "o-5": "credit_held",
    }
    credit = (await client.get("/customers/c-1/credit")).json()
    assert credit["credit_controlled"] and credit["credit_limit"] == {"amount": "1000.00", "currency": "CNY"}
    assert credit["unpaid"] == [
        {
            "amount": {"amount": "11.00", "currency": "CNY"},
            "orders": 2,
            "oldest_due_date": "2026-03-31",
            "days_overdue": 95,
        }
    ]
    assert (await client.get("/customers/nobody/credit")).status_code == 404
    assert (await client.get("/customers/nobody/orders")).json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    assert (await client.get("/orders/nope")).status_code == 404


async def test_deactivated_customers_get_422_on_customer_id(
    client: httpx.AsyncClient, feed_customer, eventually
) -> None:  # type: ignore[no-untyped-def]
    await feed_customer(
        "c-2",
        customers.CustomerRegistered(customer_id="c-2", company_name="Closed Co", region="West"),
        customers.CustomerDeactivated(reason="blocked"),
    )

    async def deactivated() -> bool:
        response = await client.get("/customers/c-2/credit")
        return response.status_code == 200 and not response.json()["active"]

    await eventually(deactivated)
    response = await client.post("/orders", json=order_body("c-2", "o-1", ("A", 1, "1.00")))
    assert field_error(response) == (422, "customer_deactivated", ("body", "customer_id"))
    assert (await client.get("/orders/o-1")).status_code == 404
    # a customer without credit terms is not credit-controlled: a huge order is simply placed
    await feed_customer("c-3", customers.CustomerRegistered(customer_id="c-3", company_name="Big", region="North"))

    async def known() -> bool:
        return (await client.get("/customers/c-3/credit")).status_code == 200

    await eventually(known)
    response = await client.post("/orders", json=order_body("c-3", "o-9", ("A", 1000, "99999.99")))
    assert response.json()["status"] == "placed" and response.json()["credit_hold"] is None
