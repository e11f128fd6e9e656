"""The orders HTTP API in-process (httpx + ASGI) over the in-memory event store and credit ledger: what
it refuses with a 422 naming the field, before or instead of a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orders.adapters.memory import InMemoryCreditLedger
from orders.bootstrap import wire
from orders.config import OrdersSettings
from orders.domain.customer_credit import CustomerCredit
from orders.entrypoints.api import build_api
from shared.db.engine import create_engine
from shared.events.topics import Topics
from shared.eventsourcing.store import InMemoryEventStore
from shared.runtime import Container

pytestmark = pytest.mark.unit

AUTH = {"Authorization": "Bearer dev-admin"}
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def ledger() -> InMemoryCreditLedger:
    ledger = InMemoryCreditLedger()
    ledger.put_customer(CustomerCredit("c-1", registered=True, active=True, terms=None, version=1))
    return ledger


@pytest.fixture
async def client(ledger: InMemoryCreditLedger) -> AsyncIterator[httpx.AsyncClient]:
    # The engine is never connected to: the fakes replace every use of it but readiness and the read side.
    engine = create_engine("postgresql://nobody:nothing@127.0.0.1:9/none")
    container = Container(settings=OrdersSettings(), engine=engine, topics=Topics("t."), parts={"clock": lambda: NOW})
    wire(container, store=InMemoryEventStore(), ledger=ledger)
    transport = httpx.ASGITransport(app=build_api(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://orders", headers=AUTH) as client:
        yield client
    await engine.dispose()


def line(**overrides: Any) -> dict[str, Any]:
    return {"sku": "S-1", "description": "goods", "quantity": 2, "unit_price": "10.00", **overrides}


def order(order_id: str = "o-1", **overrides: Any) -> dict[str, Any]:
    return {"customer_id": "c-1", "order_id": order_id, "lines": [line()], **overrides}


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    return error


async def test_an_order_whose_total_is_beyond_what_receivables_hold_is_a_422_naming_lines(
    client: httpx.AsyncClient,
) -> None:
    huge = order(lines=[line(quantity=1_000_000, unit_price="999999999999.99")])

    response = await client.post("/orders", json=huge)

    error = error_of(response)
    assert (error["loc"], error["type"], response.json()["code"]) == (
        ["body", "lines"],
        "amount_out_of_range",
        "amount_out_of_range",
    )
    assert error["input"] == "999999999999990000.00"
    assert (await client.get("/orders/o-1")).status_code == 404


async def test_the_largest_total_is_accepted(client: httpx.AsyncClient) -> None:
    largest = order(lines=[line(quantity=1, unit_price="99999999999999.9999")])

    assert (await client.post("/orders", json=largest)).status_code == 201


async def test_an_order_that_takes_the_customers_exposure_beyond_what_receivables_hold_is_a_422(
    client: httpx.AsyncClient,
) -> None:
    first = order("o-1", lines=[line(quantity=1, unit_price="60000000000000")])
    assert (await client.post("/orders", json=first)).status_code == 201

    error = error_of(await client.post("/orders", json={**first, "order_id": "o-2"}))

    assert (error["loc"], error["type"]) == (["body", "lines"], "amount_out_of_range")
    assert "exposure" in error["msg"]


async def test_a_nul_in_a_body_string_or_an_order_id_is_a_422_naming_where(client: httpx.AsyncClient) -> None:
    assert error_of(await client.post("/orders", json=order(lines=[line(sku="a\u0000b")])))["loc"] == [
        "body",
        "lines",
        0,
        "sku",
    ]
    assert error_of(await client.get("/orders/a%00b"))["loc"] == ["path"]
    assert error_of(await client.get("/customers/c-1/orders?offset=0&limit=1%00"))["loc"] == ["query", "limit"]


async def test_an_order_id_in_the_path_must_be_an_identifier(client: httpx.AsyncClient) -> None:
    assert error_of(await client.get("/orders/a%20b"))["loc"] == ["path", "order_id"]


@pytest.mark.parametrize("quantity", [True, "3", 3.0])
async def test_a_quantity_must_be_a_json_integer(client: httpx.AsyncClient, quantity: Any) -> None:
    error = error_of(await client.post("/orders", json=order(lines=[line(quantity=quantity)])))

    assert error["loc"] == ["body", "lines", 0, "quantity"]


@pytest.mark.parametrize(
    "placed_at",
    ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z"],
)
async def test_placed_at_out_of_range_or_before_1970_is_a_422(client: httpx.AsyncClient, placed_at: str) -> None:
    assert error_of(await client.post("/orders", json=order(placed_at=placed_at)))["loc"] == ["body", "placed_at"]


async def test_placed_at_is_kept_in_utc(client: httpx.AsyncClient) -> None:
    response = await client.post("/orders", json=order(placed_at="2026-02-01T08:00:00+08:00"))

    assert response.json()["placed_at"] == "2026-02-01T00:00:00Z"


@pytest.mark.parametrize(
    "body",
    [
        order(placedAt="2020-01-01T00:00:00Z"),
        order(lines=[line(discount="5.00")]),
    ],
)
async def test_an_unknown_field_is_a_422_naming_it(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    error = error_of(await client.post("/orders", json=body))

    assert error["type"] == "extra_forbidden"
    assert error["loc"][-1] in ("placedAt", "discount")


async def test_unknown_fields_of_payments_returns_and_cancellations_are_422s(client: httpx.AsyncClient) -> None:
    assert (await client.post("/orders", json=order())).status_code == 201
    for path, body in [
        ("payments", {"amount": "1.00", "note": "x"}),
        ("returns", {"amount": "1.00", "reason": "broken", "lines_": []}),
        ("cancellation", {"reason": "x", "by": "me"}),
        ("credit-release", {"released_by": "op-1", "reason": "x"}),
    ]:
        assert error_of(await client.post(f"/orders/o-1/{path}", json=body))["type"] == "extra_forbidden", path


async def test_a_return_by_lines_beyond_what_is_returnable_names_lines(client: httpx.AsyncClient) -> None:
    assert (await client.post("/orders", json=order())).status_code == 201  # 2 × 10.00
    by_amount = {"amount": "15.00", "reason": "broken"}
    assert (await client.post("/orders/o-1/returns", json=by_amount)).status_code == 200

    response = await client.post(
        "/orders/o-1/returns", json={"reason": "broken", "lines": [{"sku": "S-1", "quantity": 1}]}
    )

    error = error_of(response)
    assert (error["loc"], error["type"]) == (["body", "lines"], "exceeds_returnable")
    assert error["input"] == [{"sku": "S-1", "quantity": 1}]


@pytest.mark.parametrize(
    ("path", "body"), [("cancellation", {"reason": "  "}), ("returns", {"amount": "1", "reason": " "})]
)
async def test_a_blank_reason_is_a_422(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    assert (await client.post("/orders", json=order())).status_code == 201

    error = error_of(await client.post(f"/orders/o-1/{path}", json=body))

    assert (error["loc"], error["type"]) == (["body", "reason"], "string_blank")


async def test_an_order_within_bounds_is_placed_with_its_total(client: httpx.AsyncClient) -> None:
    response = await client.post("/orders", json=order())

    assert (response.status_code, Decimal(response.json()["total"])) == (201, Decimal("20.00"))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("cancellation", {"reason": "call Li on +86 138 0000 7733"}),
        ("returns", {"amount": "1", "reason": "ask li@example.com"}),
    ],
)
async def test_personal_data_in_a_reason_is_a_422_not_a_500(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    # the reason reaches a public event, whose contract refuses personal data
    assert (await client.post("/orders", json=order())).status_code == 201

    error = error_of(await client.post(f"/orders/o-1/{path}", json=body))

    assert error["loc"] == ["body", "reason"] and "personal data" in error["msg"]


async def test_personal_data_in_a_line_description_or_an_operator_id_is_a_422(client: httpx.AsyncClient) -> None:
    # QA round 2: both reach public events (OrderPlaced, OrderCreditReleased), which are kept forever
    error = error_of(await client.post("/orders", json=order(lines=[line(description="deliver to bob@example.org")])))
    assert error["loc"] == ["body", "lines", 0, "description"] and "e-mail" in error["msg"]

    assert (await client.post("/orders", json=order("o-2"))).status_code == 201
    error = error_of(await client.post("/orders/o-2/credit-release", json={"released_by": "j.doe@example.com"}))
    assert error["loc"] == ["body", "released_by"]
