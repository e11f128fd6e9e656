"""``tierstream`` — run the local stack, load data, look inside.

tierstream up        start PostgreSQL, Kafka and the four services (idempotent; a service it starts again
                     gets the settings the stack was started with, e.g. the demo's clock), print URLs
tierstream down      stop everything ``up`` started, and forget those settings
tierstream status    what runs where, and what is not ready (exit code 1 then)
tierstream demo      up + load the Online Retail data set + show a few customers' segments
tierstream load      load the data set into a running stack
tierstream segment   one customer's segment
tierstream streams   one customer's event streams (customer, orders, complaints) as one timeline
tierstream recalibrate  recompute tier cut points and RFM breakpoints now
tierstream rebuild   replay every topic into fresh segmentation tables and compare with the live ones
tierstream tail      print events arriving on a topic
tierstream deadletters list | redrive   inspect dead letters; re-drive them once their cause is fixed

Every call to a service API sends ``Authorization: Bearer $TIERSTREAM_TOKEN`` (default ``dev-admin``, the
development token; see docs/api.md). Every failure — a service that does not answer or answers outside 2xx,
a data file that is not the data set, a Kafka topic that is not there — ends the command with a message on
stderr and exit code 1 (2 for a bad option, as typer reports it), not a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand, TyperGroup, TyperOption

from shared.clock import iso, running_from
from tierstream import api, deadletters_cli, stack
from tierstream.assumed_feedback import FeedbackPlan, feedback_for
from tierstream.dataset import DatasetError, LoadPlan, day_after_last_order, payments_for, plan, read_rows
from tierstream.loader import LoadReport, load, make_progress


class _FlagsTakeNoValue:
    """Typer's rich help prints a value type after every option, flags included (``--help <bool>``), as if
    they took a value; its plain help leaves flags without one. So does this: a flag's type column is empty."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
                param.metavar = ""
        return params


class Command(_FlagsTakeNoValue, TyperCommand):
    """Every command of the CLI (``@app.command(cls=Command)``)."""


class Group(_FlagsTakeNoValue, TyperGroup):
    """The CLI itself."""


app = typer.Typer(
    cls=Group,
    help="Tierstream: event-sourced customer management — local stack and tools.",
    add_completion=False,
    rich_markup_mode="markdown",
)
console = Console()
err = Console(stderr=True)

KafkaPort = Annotated[int, typer.Option(help="Kafka client port")]
PgPort = Annotated[int, typer.Option(help="PostgreSQL port")]
Partitions = Annotated[int, typer.Option(min=1, help="partitions of the contract topics")]


def _config(
    kafka_port: int = stack.DEV_KAFKA_PORT, pg_port: int = stack.DEV_PG_PORT, partitions: int = 3
) -> stack.StackConfig:
    return stack.StackConfig(kafka_port=kafka_port, pg_port=pg_port, partitions=partitions)


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _request(
    config: stack.StackConfig,
    service: str,
    method: str,
    path: str,
    *,
    accept: Collection[int] = (),
    timeout: float = 10,
    **kwargs: Any,
) -> httpx.Response:
    """One call to a service API of the local stack with the token; :class:`tierstream.api.ApiError` unless
    it answered 2xx or a status in ``accept``."""
    with api.new_client(stack.auth_headers(), timeout) as client:
        return api.call(client, service, method, f"{config.url(service)}{path}", accept=accept, **kwargs)


def _call(
    config: stack.StackConfig,
    service: str,
    method: str,
    path: str,
    *,
    accept: Collection[int] = (),
    timeout: float = 10,
    **kwargs: Any,
) -> httpx.Response:
    """:func:`_request`, where a failure ends the command with the message and exit code 1."""
    try:
        return _request(config, service, method, path, accept=accept, timeout=timeout, **kwargs)
    except api.ApiError as exc:
        raise _fail(str(exc)) from exc


def _print_urls(config: stack.StackConfig, infra: stack.Infra) -> None:
    table = Table(title="Tierstream is up", show_lines=False)
    table.add_column("what")
    table.add_column("where")
    for service in stack.SERVICES:
        table.add_row(f"{service} API", f"{config.url(service)}/docs")
    table.add_row("dashboard", config.dashboard_url())
    table.add_row("segment of a customer", f"{config.url('segmentation')}/customers/<id>/segment")
    table.add_row("Kafka", infra.bootstrap_servers)
    table.add_row("PostgreSQL", infra.pg_url.replace(":tierstream@", ":***@"))
    table.add_row("logs", str(config.log_dir))
    console.print(table)
    console.print(f"Dashboard: [bold]{config.dashboard_url()}[/]", soft_wrap=True)
    console.print("[dim]  read-only; to act on alerts, sign out there and sign in with dev-admin[/]")
    console.print(f"API docs:  {config.url('segmentation')}/docs  (stop everything: tierstream down)", soft_wrap=True)


@app.command(cls=Command)
def up(
    kafka_port: KafkaPort = stack.DEV_KAFKA_PORT,
    pg_port: PgPort = stack.DEV_PG_PORT,
    partitions: Partitions = 3,
) -> None:
    """Start PostgreSQL, Kafka, migrations and all four services in the background.

    A service that is not running is started with the settings the stack's services were started with
    (`tierstream demo` remembers its simulated clock until `tierstream down`); a variable set in the
    environment wins over a remembered one."""
    config = _config(kafka_port, pg_port, partitions)
    started = time.monotonic()
    try:
        remembered = stack.remembered_settings(config)
        for service in stack.SERVICES:
            if remembered is not None and not stack.service_pid(config, service):
                console.print(_restart_note(remembered, service), soft_wrap=True)
        with console.status("starting PostgreSQL, Kafka and the services…"):
            infra = stack.up(config)
    except stack.StackError as exc:
        raise _fail(str(exc)) from exc
    _print_urls(config, infra)
    console.print(f"[dim]up in {time.monotonic() - started:.1f}s[/]")


def _restart_note(remembered: stack.RememberedSettings, service: str) -> str:
    """What ``up`` says before it starts ``service`` again on a stack with remembered settings."""
    applied, overridden = remembered.for_service(service, os.environ)
    prefix = f"{service.upper()}_"
    start, anchor = applied.pop(f"{prefix}CLOCK_START", None), applied.pop(f"{prefix}CLOCK_ANCHOR", None)
    parts = []
    if start is not None:
        parts.append(f"the {remembered.origin}'s clock from {start}" + _clock_now(start, anchor))
    if applied:
        parts.append(f"the {remembered.origin}'s {', '.join(sorted(applied))}")
    said = f"restarting {service} with " + " and ".join(parts) if parts else f"restarting {service}"
    if overridden:
        said += f"; {', '.join(overridden)} from the environment instead of the {remembered.origin}'s"
    return said


def _clock_now(start: str, anchor: str | None) -> str:
    """``, anchored at …: it continues at …`` — where the restarted service's clock will read."""
    if anchor is None:
        return " (no anchor: it starts there again)"
    try:
        now = running_from(datetime.fromisoformat(start), datetime.fromisoformat(anchor))()
    except (ValueError, TypeError):
        return f", anchored at {anchor}"  # the service refuses it at start, naming the variable
    return f", anchored at {anchor}: it continues at {iso(now)}"


@app.command(cls=Command)
def down() -> None:
    """Stop the services, Kafka and PostgreSQL that `tierstream up` started (by PID), and forget the settings
    they were started with (the demo's clock)."""
    config = _config()
    try:
        stopped = stack.down(config)
    except stack.StackError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"stopped: {', '.join(stopped) or 'no services'}; Kafka and PostgreSQL stopped")


@app.command(cls=Command)
def status() -> None:
    """Show which services, Kafka and PostgreSQL run and whether they are ready; exit code 1 if any is not."""
    config = _config()
    table = Table()
    for column in ("what", "pid", "where", "state"):
        table.add_column(column)
    problems: list[str] = []
    for service in stack.SERVICES:
        pid = stack.service_pid(config, service)
        state = _readiness(config, service) if pid else "not running (run `tierstream up`)"
        if not state.startswith("ready"):
            problems.append(f"{service} {state}")
        table.add_row(service, str(pid or "-"), config.url(service), escape(state))
    for infra in stack.infra_states(config):
        where = f"127.0.0.1:{infra.port}"
        if infra.running:
            state = "running"
        elif infra.pid is None:
            state = "not running (run `tierstream up`)"
        elif not infra.listening:
            state = f"not answering on {where}"
        else:  # the port accepts connections; the server behind does not serve (stopped, wedged, refusing)
            state = f"accepts connections but does not serve requests: {infra.unanswered}"
        if state != "running":
            problems.append(f"{infra.name} {state}")
        table.add_row(infra.name, str(infra.pid or "-"), where, escape(state))
    console.print(table)
    if problems:
        raise _fail("; ".join(problems))


def _readiness(config: stack.StackConfig, service: str) -> str:
    """``ready`` (with the advisory checks that failed, e.g. ``ready (kafka not answering)``), or what is wrong:
    ``unavailable: database`` (the failed checks of /health/ready), no answer…"""
    try:
        response = _request(config, service, "GET", "/health/ready", accept=(503,), timeout=3)
        body = response.json()
    except api.ApiError as exc:
        return f"no answer ({exc})"
    except ValueError:
        return f"answered HTTP {response.status_code} without JSON"
    checks = body.get("checks") if isinstance(body, dict) else None
    failed = sorted(name for name, ok in checks.items() if not ok) if isinstance(checks, dict) else []
    if response.status_code == 200:  # a failed advisory check (kafka) does not make a service unready
        return f"ready ({', '.join(failed)} not answering)" if failed else "ready"
    return f"{body.get('status', 'unavailable')}: {', '.join(failed)}" if failed else api.detail(response)


def _plan(data: Path, customers: int | None) -> LoadPlan:
    if not data.exists():
        raise _fail(f"data file {data} not found (expected the Online Retail CSV, gzip or plain)")
    if not data.is_file():
        raise _fail(f"--data {data} is a directory, not the Online Retail CSV file")
    try:
        with console.status(f"reading {data}…"):
            return plan(read_rows(data), max_customers=customers)
    except DatasetError as exc:
        raise _fail(str(exc)) from exc


def _check_stack(config: stack.StackConfig) -> None:
    """Every service ready and the token accepted, before thousands of requests each find out on their own."""
    for service in stack.SERVICES:
        _call(config, service, "GET", "/health/ready", timeout=5)
    _call(config, "customers", "GET", "/customers", params={"limit": 1})


def _load(load_plan: LoadPlan, config: stack.StackConfig, concurrency: int, pay: bool, feedback: bool) -> LoadReport:
    """Load the plan and print what was loaded; the report (its ``failed`` counts are printed, not raised)."""
    if not load_plan.orders:
        raise _fail(f"nothing to load: no order in the {load_plan.rows_read:,} rows read ({_reasons(load_plan)})")
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
        raise _fail(
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
    config = _config(kafka_port, pg_port, 3)
    load_plan = _plan(data or _default_data(), customers)
    as_of = day_after_last_order(load_plan)
    try:
        _use_demo_clock(config, as_of)
        with console.status("starting PostgreSQL, Kafka and the services…"):
            infra = stack.up(config)
    except stack.StackError as exc:
        raise _fail(str(exc)) from exc
    report = _load(load_plan, config, concurrency, pay, feedback)
    _recalibrate(config, as_of)
    _show_top_customers(config, load_plan)
    _show_alerts(config)
    _print_urls(config, infra)
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
        response = _request(
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
                response = _call(config, "segmentation", "GET", path, accept=(404,), timeout=5)
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
                page = _request(config, "segmentation", "GET", "/alerts", params={"state": "open"}).json()
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


@app.command(cls=Command)
def segment(customer_id: str) -> None:
    """Print one customer's live segment (from the segmentation read API)."""
    config = stack.StackConfig()
    response = _call(config, "segmentation", "GET", f"/customers/{customer_id}/segment", accept=(404,), timeout=5)
    if response.status_code == 404:
        raise _fail(f"no segment for customer {customer_id!r} (unknown, or not projected yet)")
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
        raise _fail(str(exc)) from exc


app.add_typer(deadletters_cli.build_app(Command, _fail), name="deadletters", cls=Group)


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
        raise _fail(str(exc)) from exc
    if not found.entries:
        raise _fail(f"no events for customer {customer_id!r} in customers, orders or feedback")
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


def _instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _fail(
            f"{option} {value!r} is not an ISO 8601 date or instant (e.g. 2011-12-10 or 2011-12-10T00:00Z)"
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@app.command(cls=Command)
def recalibrate(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="instant to calibrate at (ISO 8601; default: now)")
    ] = None,
) -> None:
    """Recompute tier cut points and RFM breakpoints now (segmentation API) and re-grade every customer."""
    config = stack.StackConfig()
    instant = _instant(as_of, "--as-of")
    body = {} if instant is None else {"as_of": instant.isoformat()}
    response = _call(config, "segmentation", "POST", "/calibrations", json=body, timeout=300)
    console.print_json(response.text)


@app.command(cls=Command)
def rebuild(
    clock: Annotated[
        str | None,
        typer.Option(
            "--clock",
            help="the fixed instant to replay at (ISO 8601; default: the segmentation service's clock, else now)",
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="keep the rebuild schema for inspection (default: drop it after comparing)")
    ] = False,
    kafka_port: KafkaPort = stack.DEV_KAFKA_PORT,
    pg_port: PgPort = stack.DEV_PG_PORT,
) -> None:
    """Replay every topic into fresh segmentation tables and compare them with the live ones (per table).

    Each rebuilt customer is graded as of the instant its live grades were taken, so a service whose clock
    moves on is compared like for like. The fresh tables live in a schema `rebuild_<stamp>` of the
    segmentation database, dropped once compared unless `--keep`."""
    config = _config(kafka_port, pg_port, 3)
    given = _instant(clock, "--clock")
    for what, port in (("Kafka", kafka_port), ("PostgreSQL", pg_port)):
        if not stack.listening(port):
            raise _fail(f"cannot reach {what} at 127.0.0.1:{port}; is the stack up? (tierstream up)")
    instant = given or _service_clock(config) or datetime.now(UTC)
    with console.status(f"replaying every topic into fresh tables at {instant:%Y-%m-%d %H:%M}…"):
        report = _run_rebuild(config, instant, keep=keep)
    table = Table(title=f"rebuild into {report['schema']}: {_records_read(report)}")
    for column in ("table", "live rows", "rebuilt rows", "equal", "differing keys (first 10)"):
        table.add_column(column)
    for row in report["tables"]:
        table.add_row(
            row["table"],
            str(row["live_rows"]),
            str(row["rebuilt_rows"]),
            "yes" if row["equal"] else "[red]no[/]",
            ", ".join(list(dict.fromkeys(row["differing_keys"]))[:10]),
        )
    console.print(table)
    if report.get("operator_actions_replayed"):
        console.print(
            f"{report['operator_actions_replayed']} operator actions on churn alerts applied again where they were taken"
        )
    skipped = {reason: n for reason, n in report.get("alerts_not_compared", {}).items() if n}
    if skipped:
        console.print(
            "churn alerts not compared (see docs/segmentation.md, rebuild): "
            + ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in skipped.items())
        )
    _say_schema(config, report["schema"], kept=keep)
    if not report["identical"]:
        facts_equal = all(
            row["equal"]
            for row in report["tables"]
            if row["table"].startswith("customer_") and row["table"] != "customer_segments"
        )
        if facts_equal:
            err.print(
                "[yellow]the facts tables match; customer_segments rows that the running service re-graded "
                "while the rebuild ran (its sweep, new events) can differ: run the rebuild again[/]"
            )
        raise _fail("the rebuilt projection differs from the live one (see the tables marked no)")
    console.print("[green]identical[/]: the live projection equals a replay of the history")


def _service_clock(config: stack.StackConfig) -> datetime | None:
    """The segmentation service's clock (a demo runs on the data's timeline), or None if it does not answer."""
    try:
        response = _request(config, "segmentation", "GET", "/caller", timeout=3)
        at = datetime.fromisoformat(response.json()["service_time"])
    except (api.ApiError, ValueError, KeyError, TypeError):
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _records_read(report: dict[str, Any]) -> str:
    """How much the replay read: Kafka records (a redelivered event is on a topic twice), and of them how
    many distinct events it applied, when the report says."""
    said = f"{report['events_replayed']:,} records read"
    if "events_applied" not in report:
        return said
    skipped = [
        f"{report[k]:,} {what}"
        for k, what in (("duplicates", "duplicates"), ("dead_lettered", "dead-lettered"))
        if report.get(k)
    ]
    return f"{said}, {report['events_applied']:,} distinct events applied" + (
        f" ({', '.join(skipped)})" if skipped else ""
    )


def _say_schema(config: stack.StackConfig, schema: str, *, kept: bool) -> None:
    if not kept:
        console.print(f"dropped the rebuild schema {schema} (--keep keeps it for inspection)")
        return
    database = f"postgresql://tierstream:tierstream@127.0.0.1:{config.pg_port}/{config.database_prefix}segmentation"
    console.print(
        f"kept the rebuild schema [bold]{schema}[/] in the segmentation database; drop it when done:\n"
        f"  psql {database} -c 'DROP SCHEMA {schema} CASCADE'",
        soft_wrap=True,
    )


def _run_rebuild(config: stack.StackConfig, instant: datetime, *, keep: bool) -> dict[str, Any]:
    """``python -m segmentation rebuild`` against the local stack: its JSON report. When it fails, its whole
    output goes to ``<logs>/rebuild.log`` and the command ends with the error it died of."""
    import subprocess
    import sys

    infra = stack.Infra(
        bootstrap_servers=f"127.0.0.1:{config.kafka_port}",
        pg_url=f"postgresql://tierstream:tierstream@127.0.0.1:{config.pg_port}/postgres",
    )
    # a plain traceback (not typer's boxed one), so its last line is the error
    env = {**os.environ, **stack.service_env(config, infra, "segmentation"), "TYPER_STANDARD_TRACEBACK": "1"}
    command = [sys.executable, "-m", "segmentation", "rebuild", "--clock", instant.isoformat()]
    command.append("--keep" if keep else "--no-keep")
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    with contextlib.suppress(ValueError):
        report: dict[str, Any] = json.loads(result.stdout)
        return report
    log = config.log_dir / "rebuild.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"$ {' '.join(command)}\n[exit code {result.returncode}]\n{result.stdout}{result.stderr}")
    raise _fail(f"rebuild failed (exit code {result.returncode}): {last_error(result.stderr)}\nits whole output: {log}")


def last_error(output: str, tail_lines: int = 6) -> str:
    """The error a Python process died of: what follows the frames of the last traceback in ``output``
    (the exception and its message), else the last ``tail_lines`` lines."""
    lines = output.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last):")]
    if starts:
        after = lines[starts[-1] + 1 :]
        # the frames are indented ("  File …", their source line, ^^^ markers); the exception is not
        first = next((i for i, line in enumerate(after) if line and not line[0].isspace()), None)
        if first is not None:
            return "\n".join(after[first : first + 12])
    return "\n".join(lines[-tail_lines:]) or "no output"


def main() -> None:
    app()
