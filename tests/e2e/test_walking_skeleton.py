"""End to end: the four services as real processes on real Kafka + PostgreSQL, driven over HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from tierstream import stack

pytestmark = pytest.mark.e2e

AUTH = stack.auth_headers()  # every API requires a bearer token; the stack accepts the dev tokens


def api_get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, headers=AUTH, **kwargs)


def api_post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, headers=AUTH, **kwargs)


def wait_for(url: str, predicate, timeout_s: float = 30) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        response = api_get(url, timeout=5)
        last = response.status_code, response.text
        if response.status_code == 200 and predicate(response.json()):
            return response.json()
        time.sleep(0.2)
    raise AssertionError(f"{url} never satisfied the expectation; last answer {last}")


def post_order(url: str, body: dict, timeout_s: float = 30, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def,type-arg]
    """POST an order, waiting while orders does not know the customer yet: it learns of new customers
    through crm.customers.v1 (customers relay → Kafka → orders' credit-terms consumer)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        response = api_post(url, json=body, timeout=10, **kwargs)
        unknown = response.status_code == 422 and response.json().get("code") == "unknown_customer"
        if not unknown or time.monotonic() > deadline:
            return response
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def test_register_order_complain_and_see_the_segment(running_stack: stack.StackConfig) -> None:
    c = running_stack
    customer_id = f"cust-{uuid.uuid4().hex[:8]}"
    response = api_post(
        f"{c.url('customers')}/customers",
        json={"customer_id": customer_id, "company_name": "Hangzhou Trading Co.", "region": "East China"},
    )
    assert response.status_code == 201, response.text
    for n, (qty, price) in enumerate([(10, "120.00"), (3, "99.90"), (1, "0.10")]):
        response = post_order(
            f"{c.url('orders')}/orders",
            {
                "customer_id": customer_id,
                "order_id": f"{customer_id}-o{n}",
                "lines": [{"sku": f"SKU-{n}", "description": "goods", "quantity": qty, "unit_price": price}],
            },
        )
        assert response.status_code == 201, response.text
    assert response.json()["total"] == "0.10"
    response = api_post(
        f"{c.url('feedback')}/complaints",
        json={"customer_id": customer_id, "category": "delivery", "severity": "high", "summary": "late truck"},
    )
    assert response.status_code == 201, response.text

    segment = wait_for(
        f"{c.url('segmentation')}/customers/{customer_id}/segment",
        lambda s: s["orders_count"] == 3 and s["open_complaints"] == 1 and s["registered"],
    )
    assert segment["net_revenue"] == "1499.8000"  # 1200 + 299.70 + 0.10
    assert segment["currency"] == "CNY"
    assert segment["value_tier"] == "normal"
    assert segment["company_name"] == "Hangzhou Trading Co."


def test_malformed_commands_get_422_with_field_errors(running_stack: stack.StackConfig) -> None:
    response = api_post(
        f"{running_stack.url('orders')}/orders",
        json={"customer_id": "c 1", "lines": [{"sku": "", "quantity": 0, "unit_price": 1.5}]},
    )
    assert response.status_code == 422
    fields = {tuple(e["loc"][1:]) for e in response.json()["detail"]}
    assert {("customer_id",), ("lines", 0, "sku"), ("lines", 0, "quantity"), ("lines", 0, "unit_price")} <= fields
    response = api_post(f"{running_stack.url('feedback')}/complaints", json={"customer_id": "c1", "severity": "meh"})
    assert response.status_code == 422
    assert {e["loc"][-1] for e in response.json()["detail"]} >= {"category", "severity", "summary"}


def test_reads_of_unknown_things_are_404_and_streams_are_readable(running_stack: stack.StackConfig) -> None:
    c = running_stack
    assert httpx.get(f"{c.url('orders')}/orders/nope").status_code == 401  # no token
    assert api_get(f"{c.url('orders')}/orders/nope").status_code == 404
    assert api_get(f"{c.url('segmentation')}/customers/nope/segment").status_code == 404
    customer_id = f"cust-{uuid.uuid4().hex[:8]}"
    api_post(f"{c.url('customers')}/customers", json={"customer_id": customer_id, "company_name": "A", "region": "B"})
    again = api_post(
        f"{c.url('customers')}/customers", json={"customer_id": customer_id, "company_name": "A", "region": "B"}
    )
    assert again.status_code == 409
    events = api_get(f"{c.url('customers')}/customers/{customer_id}/events").json()
    assert [(e["stream_version"], e["event_type"]) for e in events] == [(1, "CustomerRegistered")]


def test_a_customers_streams_read_as_one_timeline(running_stack: stack.StackConfig) -> None:
    from tierstream.streams import customer_streams

    c = running_stack
    customer_id = f"cust-{uuid.uuid4().hex[:8]}"
    response = api_post(
        f"{c.url('customers')}/customers", json={"customer_id": customer_id, "company_name": "T", "region": "R"}
    )
    assert response.status_code == 201, response.text
    for n in range(2):
        line = {"sku": "S", "description": "goods", "quantity": 1, "unit_price": "10.00"}
        body = {"customer_id": customer_id, "order_id": f"{customer_id}-o{n}", "lines": [line]}
        assert post_order(f"{c.url('orders')}/orders", body).status_code == 201
    assert (
        api_post(f"{c.url('orders')}/orders/{customer_id}-o1/cancellation", json={"reason": "changed mind"}).status_code
        == 200
    )
    complaint = api_post(
        f"{c.url('feedback')}/complaints",
        json={"customer_id": customer_id, "category": "product_quality", "severity": "low", "summary": "scratched"},
    )
    assert complaint.status_code == 201, complaint.text

    found = customer_streams({s: c.url(s) for s in stack.SERVICES}, AUTH, customer_id)

    assert (found.orders, found.orders_total, found.complaints) == (2, 2, 1)
    lines = [(e.service, e.stream, e.version, e.event_type) for e in found.entries]
    assert ("customers", f"customer {customer_id}", 1, "CustomerRegistered") in lines
    assert ("orders", f"order {customer_id}-o1", 2, "OrderCancelled") in lines
    assert [e for e in lines if e[0] == "orders" and e[3] == "OrderPlaced"] == [
        ("orders", f"order {customer_id}-o0", 1, "OrderPlaced"),
        ("orders", f"order {customer_id}-o1", 1, "OrderPlaced"),
    ]
    complaint_id = complaint.json()["complaint_id"]
    assert ("feedback", f"complaint {complaint_id}", 1, "ComplaintFiled") in lines
    assert [e.occurred_at for e in found.entries] == sorted(e.occurred_at for e in found.entries)
    assert lines[0][3] == "CustomerRegistered"


def test_the_loader_settles_each_order_with_its_returns_and_payment(running_stack: stack.StackConfig) -> None:
    from tierstream.dataset import payments_for, plan
    from tierstream.loader import load

    c = running_stack
    tag = str(uuid.uuid4().int)[:7]  # CSV customer ids and invoice numbers are digits
    a, b = f"9{tag}1", f"9{tag}2"  # CustomerIDs as the CSV spells them
    row = {"StockCode": "85123A", "Description": "HEART T-LIGHT HOLDER", "Country": "France"}
    rows = [
        {
            **row,
            "InvoiceNo": f"5{tag}1",
            "Quantity": "6",
            "InvoiceDate": "2011-01-10 09:00:00",
            "UnitPrice": "2.55",
            "CustomerID": a,
        },
        {
            **row,
            "InvoiceNo": f"5{tag}2",
            "Quantity": "4",
            "InvoiceDate": "2011-02-10 09:00:00",
            "UnitPrice": "2.55",
            "CustomerID": a,
        },
        {
            **row,
            "InvoiceNo": f"C5{tag}3",
            "Quantity": "-2",
            "InvoiceDate": "2011-02-12 09:00:00",
            "UnitPrice": "2.55",
            "CustomerID": a,
        },
        {
            **row,
            "InvoiceNo": f"5{tag}4",
            "Quantity": "10",
            "InvoiceDate": "2011-03-01 09:00:00",
            "UnitPrice": "1.00",
            "CustomerID": b,
        },
    ]
    load_plan = plan(iter(rows))
    assert (len(load_plan.customers), len(load_plan.orders), len(load_plan.returns)) == (2, 3, 1)

    report = asyncio.run(
        load(load_plan, {s: c.url(s) for s in stack.SERVICES}, headers=AUTH, payments=payments_for(load_plan))
    )

    assert dict(report.created) == {"customers": 2, "orders": 3, "returns": 1, "payments": 3}, report.failures
    assert not report.failed
    for customer in (a, b):
        page = api_get(f"{c.url('orders')}/customers/C{customer}/orders").json()
        assert page["total"] == len([o for o in load_plan.orders if o.customer_id == f"C{customer}"])
        assert {o["outstanding"] for o in page["items"]} == {"0.00"}, page
    returned = api_get(f"{c.url('orders')}/orders/INV-5{tag}2").json()
    assert returned["returned"] == "5.10"
