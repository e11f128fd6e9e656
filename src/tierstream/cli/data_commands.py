"""``tierstream load`` and ``tierstream demo``: the Online Retail data set through the public APIs."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tierstream import api, stack
from tierstream.assumed_feedback import FeedbackPlan, feedback_for
from tierstream.cli import base
from tierstream.cli.base import Command, KafkaPort, PgPort, app, call, console, err, fail, request
from tierstream.cli.stack_commands import print_urls
from tierstream.dataset import DatasetError, LoadPlan, day_after_last_order, payments_for, plan, read_rows
from tierstream.loader import LoadReport, load, make_progress


def _plan(data: Path, customers: int | None) -> LoadPlan:
    if not data.exists():
        raise fail(f"data file {data} not found (expected the Online Retail CSV, gzip or plain)")
    if not data.is_file():
        raise fail(f"--data {data} is a directory, not the Online Retail CSV file")
    try:
        with console.status(f"reading {data}…"):
            return plan(read_rows(data), max_customers=customers)
    except DatasetError as exc:
        raise fail(str(exc)) from exc


def _check_stack(config: stack.StackConfig) -> None:
    """Every service ready and the token accepted, before thousands of requests each find out on their own."""
    for service in stack.SERVICES:
        call(config, service, "GET", "/health/ready", timeout=5)
    call(config, "customers", "GET", "/customers", params={"limit": 1})


def _load(load_plan: LoadPlan, config: stack.StackConfig, concurrency: int, pay: bool, feedback: bool) -> LoadReport:
    """Load the plan and print what was loaded; the report (its ``failed`` counts are printed, not raised)."""
    if not load_plan.orders:
        raise fail(f"nothing to load: no order in the {load_plan.rows_read:,} rows read ({_reasons(load_plan)})")
    _check_stack(config)
    urls = {s: config.url(s) for s in stack.SERVICES}
    payments = payments_for(load_plan) if pay else []
    assumed = feedback_for(load_plan) if feedback else None
    console.print(
        f"loading {len(load_plan.customers):,} customers, {len(load_plan.orders):,} orders, "
        f"{len(load_plan.returns):,} returns, {len(payments):,} payments from {load_plan.rows_read:,} rows"
        + _feedback_counts(assumed)
    )
    if pay:
        console.print(
            "[dim]the data set has no payment records: every invoice is assumed paid (--no-payments to skip)[/]"
        )
    if assumed is not None:
        console.print(
            "[dim]nor any customer feedback: complaints are assumed from cancellations and surveys after a "
            "sample of orders (data/README.md; --no-feedback to skip)[/]"
        )
    started = time.monotonic()
    with make_progress() as progress:
        report = asyncio.run(
            load(
                load_plan,
                urls,
                concurrency=concurrency,
                progress=progress,
                headers=stack.auth_headers(),
                payments=payments,
                feedback=assumed,
            )
        )
    elapsed = time.monotonic() - started
    table = Table(title=f"loaded in {elapsed:.0f}s")
    for column in ("kind", "created", "already there", "failed"):
        table.add_column(column, justify="right")
    kinds = ["customers", "orders", "returns", "payments"]
    kinds += ["complaints", "complaint steps", "surveys"] if assumed is not None else []
    for kind in kinds:
        table.add_row(kind, f"{report.created[kind]:,}", f"{report.already[kind]:,}", f"{report.failed[kind]:,}")
    console.print(table)
    if load_plan.rejected:
        rejected = Table(title="not loaded, by reason")
        rejected.add_column("rows / invoices", justify="right")
        rejected.add_column("reason")
        for reason, count in load_plan.rejected.most_common():
            rejected.add_row(f"{count:,}", reason)
        console.print(rejected)
    for failure in report.failures:
        err.print(f"[red]failed:[/] {escape(failure)}", highlight=False, soft_wrap=True)
    return report


def _reasons(load_plan: LoadPlan) -> str:
    return "; ".join(f"{n:,} {reason}" for reason, n in load_plan.rejected.most_common()) or "no rows"


def _fail_if_any_failed(report: LoadReport) -> None:
    failed = sum(report.failed.values())
    if failed:
        raise fail(
            f"{failed:,} commands failed (the first {len(report.failures)} reasons above); run the load again "
            "to retry them: what is already there is skipped"
        )


def _feedback_counts(assumed: FeedbackPlan | None) -> str:
    if assumed is None:
        return ""
    states = Counter(str(c.status) for c in assumed.complaints)
    by_state = ", ".join(f"{n:,} {state}" for state, n in sorted(states.items()))
    detractors = sum(s.detractor for s in assumed.surveys)
    return (
        f", and the assumed feedback: {len(assumed.complaints):,} complaints ({by_state} as of "
        f"{assumed.as_of:%Y-%m-%d}), {len(assumed.surveys):,} surveys ({detractors:,} detractors)"
    )


DataPath = Annotated[
    Path | None, typer.Option(help="Online Retail CSV (.csv or .csv.gz); default: data/online_retail.csv.gz")
]

SampleCustomers = Annotated[int | None, typer.Option(min=1, help="load only the first N customers (default: all)")]

Concurrency = Annotated[int, typer.Option(min=1, max=128, help="concurrent API requests")]

Pay = Annotated[bool, typer.Option("--payments/--no-payments", help="pay every invoice (the data has no payments)")]

Feedback = Annotated[
    bool,
    typer.Option(
        "--feedback/--no-feedback",
        help="file complaints assumed from cancellations and surveys after a sample of orders (the data has no "
        "feedback; data/README.md)",
    ),
]


def _default_data() -> Path:
    return stack.repo_root() / "data" / "online_retail.csv.gz"


@app.command("load", cls=Command)
def load_command(
    data: DataPath = None,
    customers: SampleCustomers = None,
    concurrency: Concurrency = 16,
    pay: Pay = True,
    feedback: Feedback = True,
) -> None:
    """Load the Online Retail data set into a running stack through the public APIs."""
    config = stack.StackConfig()
    _fail_if_any_failed(_load(_plan(data or _default_data(), customers), config, concurrency, pay, feedback))


@app.command(cls=Command)
def demo(
    data: DataPath = None,
    customers: SampleCustomers = None,
    concurrency: Concurrency = 16,
    kafka_port: KafkaPort = stack.DEV_KAFKA_PORT,
    pg_port: PgPort = stack.DEV_PG_PORT,
    pay: Pay = True,
    feedback: Feedback = True,
) -> None:
    """Start the stack, load the real data set, recalibrate, and show a few customers' segments.

    The data set ends on 2011-12-09, so segmentation's clock starts the day after its last invoice
    (`SEGMENTATION_CLOCK_START`): recency, activity and the trailing-12-month window then mean what
    they meant for that business on that day. The orders overdue sweep starts on the same day
    (`ORDERS_CLOCK_START`), so 2010 invoices are not reported 15 years overdue, and so does the complaint
    SLA sweep (`FEEDBACK_CLOCK_START`). The assumed complaints, their steps and the survey answers are
    dated on the data's timeline too, so segmentation counts them as of that day.

    The three clocks share one anchor (`<SERVICE>_CLOCK_ANCHOR`, the real instant the demo's clock read that
    day), and the stack remembers both until `tierstream down`: a service `tierstream up` starts again
    continues on the same timeline instead of starting the day over."""
    config = base.stack_config(kafka_port, pg_port, 3)
    load_plan = _plan(data or _default_data(), customers)
    as_of = day_after_last_order(load_plan)
    try:
        _use_demo_clock(config, as_of)
        with console.status("starting PostgreSQL, Kafka and the services…"):
            infra = stack.up(config)
    except stack.StackError as exc:
        raise fail(str(exc)) from exc
    report = _load(load_plan, config, concurrency, pay, feedback)
    _recalibrate(config, as_of)
    _show_top_customers(config, load_plan)
    _show_alerts(config)
    print_urls(config, infra)
    _fail_if_any_failed(report)


#: The services whose business clock the demo sets (``<SERVICE>_CLOCK_START`` / ``_CLOCK_ANCHOR``): segmentation's
#: engine, the orders overdue sweep's and the complaint SLA sweep's "today".
CLOCKED_SERVICES = ("segmentation", "orders", "feedback")


def demo_clock(as_of: datetime, anchor: datetime) -> dict[str, str]:
    """The demo's simulated clock for every clocked service: it read ``as_of`` at the real instant ``anchor``."""
    env: dict[str, str] = {}
    for service in CLOCKED_SERVICES:
        env[f"{service.upper()}_CLOCK_START"] = as_of.isoformat()
        env[f"{service.upper()}_CLOCK_ANCHOR"] = anchor.isoformat()
    return env


def _use_demo_clock(config: stack.StackConfig, as_of: datetime) -> None:
    """Start the services on the demo's clock and remember it for ``up``. A demo run again on a stack that
    remembers a clock from the same day continues that clock (its anchor) rather than starting it over."""
    remembered = stack.remembered_settings(config)
    clock = demo_clock(as_of, datetime.now(UTC).replace(microsecond=0))
    if remembered is not None and all(remembered.env.get(k) == v for k, v in clock.items() if k.endswith("_START")):
        clock = {k: remembered.env.get(k, v) for k, v in clock.items()}
    running = [s for s in stack.SERVICES if stack.service_pid(config, s)]
    if running and (remembered is None or remembered.env != clock):
        err.print(
            f"[yellow]{', '.join(running)} already run and keep the clock they were started with, not this demo's "
            f"from {as_of:%Y-%m-%d} (`tierstream down` first for a fresh demo)[/]",
            soft_wrap=True,
        )
    config.extra_env.update(clock)
    stack.remember_settings(config, "demo", clock)


def _recalibrate(config: stack.StackConfig, as_of: datetime) -> None:
    """Percentile cut points and RFM breakpoints over everyone loaded, as of the data set's end."""
    try:
        response = request(
            config, "segmentation", "POST", "/calibrations", json={"as_of": as_of.isoformat()}, timeout=120
        )
    except api.ApiError as exc:
        err.print(f"[yellow]recalibration failed: {escape(str(exc))}[/]", soft_wrap=True)
        return
    body = response.json()
    console.print(f"recalibrated as of {as_of:%Y-%m-%d}: {json.dumps(body, default=str)[:600]}")


def _show_top_customers(config: stack.StackConfig, load_plan: LoadPlan, count: int = 8) -> None:
    orders_per_customer: dict[str, int] = {}
    for order in load_plan.orders:
        orders_per_customer[order.customer_id] = orders_per_customer.get(order.customer_id, 0) + 1
    top = sorted(orders_per_customer, key=lambda c: -orders_per_customer[c])[:count]
    rows = _wait_for_segments(config, {c: orders_per_customer[c] for c in top})
    table = Table(title="a few customers' live segments")
    for column in ("customer", "tier", "orders", "net revenue", "last order"):
        table.add_column(column)
    for seg in rows:
        table.add_row(
            seg["customer_id"],
            seg["value_tier"],
            str(seg["orders_count"]),
            f"{seg['net_revenue']} {seg['currency'] or ''}",
            str(seg["last_order_at"])[:10],
        )
    console.print(table)


def _wait_for_segments(config: stack.StackConfig, expected: dict[str, int], timeout_s: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    rows: dict[str, dict] = {}
    with console.status("waiting for the segmentation projection to catch up…"):
        while time.monotonic() < deadline and len(rows) < len(expected):
            for customer_id, orders in expected.items():
                if customer_id in rows:
                    continue
                path = f"/customers/{customer_id}/segment"
                response = call(config, "segmentation", "GET", path, accept=(404,), timeout=5)
                if response.status_code == 200 and response.json()["orders_count"] >= orders:
                    rows[customer_id] = response.json()
            time.sleep(0.5)
    missing = set(expected) - set(rows)
    if missing:
        err.print(f"[yellow]segments not caught up after {timeout_s:.0f}s for {sorted(missing)}[/]")
    return [rows[c] for c in expected if c in rows]


def _show_alerts(config: stack.StackConfig, settle_s: float = 30) -> None:
    """How many churn alerts are open, once the count holds still for 3 s (segmentation may still be
    reading the last feedback events), at most ``settle_s`` seconds."""
    deadline, seen, still_since = time.monotonic() + settle_s, -1, time.monotonic()
    page: dict = {}
    problem = "no answer"
    with console.status("counting churn alerts…"):
        while time.monotonic() < deadline:
            try:
                page = request(config, "segmentation", "GET", "/alerts", params={"state": "open"}).json()
            except (api.ApiError, ValueError) as exc:
                page, problem = {}, str(exc)
            total = page.get("total", -1)
            if total != seen:
                seen, still_since = total, time.monotonic()
            elif time.monotonic() - still_since >= 3:
                break
            time.sleep(1)
    if seen < 0:
        err.print(f"[yellow]could not read the churn alerts (GET /alerts): {escape(problem)}[/]", soft_wrap=True)
        return
    top = "; ".join(
        f"{a['customer_id']} {a['last_score']} ({', '.join(a['reasons'])})" for a in page.get("items", [])[:3]
    )
    console.print(
        f"open churn alerts: [bold]{seen:,}[/] (the dashboard's Churn alerts page)"
        + (f"; highest risk: {top}" if top else ""),
        soft_wrap=True,
    )
