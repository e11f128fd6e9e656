"""``tierstream segment``, ``tail``, ``streams`` and ``recalibrate``: look inside a running stack."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

import typer
from rich.table import Table

from tierstream import api, stack
from tierstream.cli.base import Command, app, call, console, fail, parse_instant


@app.command(cls=Command)
def segment(customer_id: str) -> None:
    """Print one customer's live segment (from the segmentation read API)."""
    config = stack.StackConfig()
    response = call(config, "segmentation", "GET", f"/customers/{customer_id}/segment", accept=(404,), timeout=5)
    if response.status_code == 404:
        raise fail(f"no segment for customer {customer_id!r} (unknown, or not projected yet)")
    console.print_json(response.text)


@app.command(cls=Command)
def tail(
    topic: Annotated[str, typer.Argument(help="topic, e.g. crm.orders.v1")],
    from_beginning: Annotated[bool, typer.Option(help="start at the earliest offset")] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="stop after N events (default: run until Ctrl-C)")
    ] = None,
    bootstrap: Annotated[
        str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka to read from, host:port[,host:port…]")
    ] = f"127.0.0.1:{stack.DEV_KAFKA_PORT}",
) -> None:
    """Print the events on a topic, one JSON line each (partition, offset, key, value)."""
    from tierstream.tail import TailError
    from tierstream.tail import tail as tail_topic

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(tail_topic(topic, bootstrap, from_beginning=from_beginning, limit=limit, emit=typer.echo))
    except TailError as exc:
        raise fail(str(exc)) from exc


@app.command(cls=Command)
def streams(
    customer_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="print the timeline as JSON lines")] = False,
    max_orders: Annotated[int, typer.Option(min=1, help="read at most this many of the customer's orders")] = 500,
) -> None:
    """Show one customer's event streams (customer, orders, complaints) as one timeline."""
    from tierstream.streams import customer_streams, summary

    config = stack.StackConfig()
    urls = {service: config.url(service) for service in stack.SERVICES}
    try:
        found = customer_streams(urls, stack.auth_headers(), customer_id, max_orders=max_orders)
    except api.ApiError as exc:
        raise fail(str(exc)) from exc
    if not found.entries:
        raise fail(f"no events for customer {customer_id!r} in customers, orders or feedback")
    if as_json:
        for entry in found.entries:
            typer.echo(json.dumps(entry.__dict__, ensure_ascii=False, default=str))
        return
    table = Table(title=f"streams of customer {customer_id}")
    for column in ("recorded at (UTC)", "stream", "v", "event"):
        table.add_column(column, no_wrap=True)
    table.add_column("data", overflow="fold")
    for entry in found.entries:
        table.add_row(
            entry.occurred_at[:19].replace("T", " "),
            entry.stream,
            str(entry.version),
            entry.event_type,
            summary(entry.data),
        )
    console.print(table)
    capped = f" (first {found.orders} of {found.orders_total})" if found.orders < found.orders_total else ""
    console.print(
        f"{len(found.entries)} events: 1 customer stream, {found.orders} order streams{capped}, "
        f"{found.complaints} complaint streams"
    )


@app.command(cls=Command)
def recalibrate(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="instant to calibrate at (ISO 8601; default: now)")
    ] = None,
) -> None:
    """Recompute tier cut points and RFM breakpoints now (segmentation API) and re-grade every customer."""
    config = stack.StackConfig()
    instant = parse_instant(as_of, "--as-of")
    body = {} if instant is None else {"as_of": instant.isoformat()}
    response = call(config, "segmentation", "POST", "/calibrations", json=body, timeout=300)
    console.print_json(response.text)
