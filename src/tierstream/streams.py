"""One customer's event streams across the services, merged into one timeline (``tierstream streams``).

Everything is read through the services' public read APIs: the customer's own stream from customers,
each of its orders' streams from orders, each of its complaints' streams from feedback. The timeline is
ordered by when the events occurred; each line names the service and the stream it belongs to. A call
that fails raises :class:`tierstream.api.ApiError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from tierstream import api

PAGE = 200


@dataclass(frozen=True)
class TimelineEntry:
    occurred_at: str
    service: str
    stream: str
    version: int
    event_type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class CustomerStreams:
    customer_id: str
    entries: list[TimelineEntry]
    orders: int
    orders_total: int  # orders of the customer in all pages (``orders`` may be capped by ``max_orders``)
    complaints: int


def _get(client: httpx.Client, service: str, url: str, **params: int) -> httpx.Response:
    """A read; 404 (no such customer, order or complaint) is an answer, any other failure an ApiError."""
    return api.call(client, service, "GET", url, accept=(404,), params=params or None)


def _pages(client: httpx.Client, service: str, url: str, limit: int) -> Iterator[tuple[dict[str, Any], int]]:
    """Items of a paginated list (``{"items", "total"}``), with the total, up to ``limit`` items."""
    offset = 0
    while offset < limit:
        response = _get(client, service, url, limit=min(PAGE, limit - offset), offset=offset)
        if response.status_code == 404:
            return
        page = response.json()
        for item in page["items"]:
            yield item, int(page["total"])
        offset += len(page["items"])
        if not page["items"] or offset >= int(page["total"]):
            return


def _stream(client: httpx.Client, service: str, url: str, stream: str) -> list[TimelineEntry]:
    response = _get(client, service, url)
    if response.status_code == 404:
        return []
    return [
        TimelineEntry(
            occurred_at=str(event["occurred_at"]),
            service=service,
            stream=stream,
            version=int(event["stream_version"]),
            event_type=str(event["event_type"]),
            data=dict(event["data"]),
        )
        for event in response.json()
    ]


def customer_streams(
    urls: dict[str, str], headers: dict[str, str], customer_id: str, *, max_orders: int = 500
) -> CustomerStreams:
    """Read ``customer_id``'s streams from the services at ``urls`` (service name → base URL)."""
    with api.new_client(headers, timeout=10) as client:
        entries = _stream(
            client, "customers", f"{urls['customers']}/customers/{customer_id}/events", f"customer {customer_id}"
        )
        orders_total = 0
        order_ids: list[str] = []
        for order, total in _pages(client, "orders", f"{urls['orders']}/customers/{customer_id}/orders", max_orders):
            order_ids.append(str(order["order_id"]))
            orders_total = total
        for order_id in order_ids:
            entries += _stream(client, "orders", f"{urls['orders']}/orders/{order_id}/events", f"order {order_id}")
        complaint_ids = [
            str(c["complaint_id"])
            for c, _ in _pages(client, "feedback", f"{urls['feedback']}/customers/{customer_id}/complaints", 10_000)
        ]
        for complaint_id in complaint_ids:
            entries += _stream(
                client,
                "feedback",
                f"{urls['feedback']}/complaints/{complaint_id}/events",
                f"complaint {complaint_id}",
            )
    entries.sort(key=lambda e: (e.occurred_at, e.service, e.stream, e.version))
    return CustomerStreams(customer_id, entries, len(order_ids), orders_total, len(complaint_ids))


def summary(data: dict[str, Any], width: int = 90) -> str:
    """A short one-line rendering of an event's data: scalars and money (``pii://`` references stay as they are)."""
    parts = []
    for key, value in data.items():
        if isinstance(value, dict) and {"amount", "currency"} <= value.keys():  # Money
            parts.append(f"{key}={value['amount']} {value['currency']}")
        elif isinstance(value, str | int | float | bool) and key != "customer_id":
            parts.append(f"{key}={value}")
    text = ", ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"
