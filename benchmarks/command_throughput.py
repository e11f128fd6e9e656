"""Command throughput of one orders API process, against the raw cost of its writes.

    uv run python benchmarks/command_throughput.py --clients 16 --seconds 10

1. Creates a fresh orders database on the PostgreSQL server of ``DATABASE_URL`` (default: the dev
   server), migrates it and registers ``--customers`` customers (what the credit-terms consumer does).
2. Starts ONE ``python -m orders api`` process (uvicorn) on a free loopback port (``--api-processes K``
   starts K, each on its own port, the clients' connections spread over them round-robin: how the
   write side scales out, as compose replicas behind a load balancer would; the issue's goal is about one).
3. Closed loop: ``--clients`` concurrent clients place orders for ``--seconds``; prints orders/s and
   p50 / p99 latency (``--idempotency-key`` sends a fresh key with each command), and the CPU time the
   API process and this client process spent per order (user + system, then each apart).
4. Open loop at half the measured API peak (``--open-rate R``: at R/s, to compare versions at one load):
   requests start on a fixed schedule (not when the previous answer came back), latency counted from the
   scheduled start, so queueing is not hidden; prints p50 / p99.
5. The ceiling (``--no-ceiling`` skips it): the thinnest FastAPI endpoint making the same writes
   (``ceiling_app.py``: body validation, then the two rows of step 6 in one transaction; no auth,
   middleware, domain or envelope) on uvicorn as the API runs, closed loop as in 3; prints its rate, its
   CPU per order and its ratio to the raw inserts, what any FastAPI service writing per command can reach here.
6. The same writes without the API: one asyncpg transaction per order inserting an events row and an
   outbox row shaped like the API's (copied from what it stored), same concurrency, same duration;
   prints rows/s and the ratio API ÷ raw. (Last, so that its rows do not weigh on the API passes.)

The clients run on the same machine as the API and PostgreSQL and compete with them for CPU: the figures
are a floor for a real deployment, comparable between runs on one machine. To take as little of that CPU
as it can, the load runs on uvloop over plain keep-alive HTTP/1.1 connections (:class:`HttpConnection`,
a few lines over asyncio streams): httpx spent more CPU per request than the API did. ``--httpx`` uses
httpx instead, for comparison. Needs no Kafka (the API's readiness would, so the benchmark waits for
liveness and one successful command instead).

``--in-process N`` replaces all of the above: N orders straight through the API's ASGI app in this
process (no uvicorn, no HTTP client), printing the app's own CPU per order; with ``--profile FILE`` it also
writes where that CPU goes. For comparing code changes; the figures above are the issue's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvloop

from ceiling_app import INSERT_EVENT, INSERT_OUTBOX, TEMPLATE_EVENT, TEMPLATE_OUTBOX
from orders.__main__ import DEFINITION
from orders.application.credit_terms import CreditTermsProjector
from shared.db.engine import create_engine, to_libpq_url
from shared.db.migrations import upgrade
from shared.events import customers as customer_events
from shared.events.envelope import Envelope
from shared.logging import configure_logging
from shared.testing.infra import asyncpg_url, with_database

AUTH = {"Authorization": "Bearer dev-admin"}
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: dict[int | str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def fail(self, what: int | str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    return sum(cpu_times(pid))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads answers with a Content-Length (as
    uvicorn sends them). Enough for this load, and several times cheaper per request than httpx."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader = reader
        self.writer = writer
        self.head = f"Host: {host}\r\nAuthorization: {AUTH['Authorization']}\r\nContent-Type: application/json\r\n"

    @classmethod
    async def open(cls, base: str) -> HttpConnection:
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer, f"{host}:{port}")

    async def post(self, path: str, body: dict[str, object], headers: dict[str, str] | None = None) -> int:
        payload = json.dumps(body).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        request = f"POST {path} HTTP/1.1\r\n{self.head}{extra}Content-Length: {len(payload)}\r\n\r\n"
        self.writer.write(request.encode() + payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


class Client:
    """Hands out idle connections, opening more when all are busy (the open loop needs that); new
    connections go to the API processes in turn."""

    def __init__(self, bases: list[str]) -> None:
        self.bases = bases
        self.idle: list[HttpConnection] = []
        self.all: list[HttpConnection] = []

    async def post(self, path: str, body: dict[str, object], headers: dict[str, str] | None = None) -> int:
        # uvicorn closes keep-alive connections idle for 5 s: skip those it already closed
        while self.idle and self.idle[-1].reader.at_eof():
            stale = self.idle.pop()
            stale.close()
            self.all.remove(stale)
        if self.idle:
            connection = self.idle.pop()
        else:
            connection = await HttpConnection.open(self.bases[len(self.all) % len(self.bases)])
            self.all.append(connection)
        try:
            status = await connection.post(path, body, headers)
        except BaseException:
            connection.close()
            self.all.remove(connection)
            raise
        self.idle.append(connection)
        return status

    def close(self) -> None:
        for connection in self.all:
            connection.close()


class HttpxClient:
    def __init__(self, base: str, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30, limits=limits)

    async def post(self, path: str, body: dict[str, object], headers: dict[str, str] | None = None) -> int:
        return (await self.client.post(path, json=body, headers=headers)).status_code

    def close(self) -> None:
        asyncio.get_running_loop().create_task(self.client.aclose())


def make_client(bases: list[str], connections: int, use_httpx: bool) -> Client | HttpxClient:
    return HttpxClient(bases[0], connections) if use_httpx else Client(bases)


TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, httpx.TransportError)


def order_body(customers: int, tag: str, n: int) -> dict[str, object]:
    return {
        "customer_id": f"bench-c{n % customers}",
        "order_id": f"{tag}-{n}",
        "lines": [
            {"sku": "85123A", "description": "WHITE HANGING HEART T-LIGHT HOLDER", "quantity": 6, "unit_price": "2.55"},
            {"sku": "71053", "description": "WHITE METAL LANTERN", "quantity": 6, "unit_price": "3.39"},
        ],
    }


# -- set-up -------------------------------------------------------------------------------------------
async def prepare_database(server_url: str, customers: int) -> str:
    url = with_database(asyncpg_url(server_url), f"bench_orders_{uuid.uuid4().hex[:8]}")
    await upgrade(DEFINITION.migrations, url)
    engine = create_engine(url)
    try:
        envelopes = [
            Envelope.wrap(
                customer_events.CustomerRegistered(customer_id=f"bench-c{c}", company_name="Bench Co", region="UK"),
                producer="customers",
                aggregate_type="customer",
                aggregate_id=f"bench-c{c}",
                aggregate_version=1,
                customer_id=f"bench-c{c}",
                correlation_id="bench-seed",
            )
            for c in range(customers)
        ]
        async with engine.begin() as conn:
            await CreditTermsProjector().apply(conn, envelopes)
    finally:
        await engine.dispose()
    return url


def start_api(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ORDERS_DATABASE_URL": database_url,
        "ORDERS_HTTP_PORT": str(port),
        "ORDERS_HTTP_HOST": "127.0.0.1",
        "TIERSTREAM_TOPIC_NAMESPACE": f"bench{uuid.uuid4().hex[:6]}.",
        "TIERSTREAM_ENV": "development",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("TIERSTREAM_API_TOKENS", None)  # the dev tokens
    return subprocess.Popen(
        [sys.executable, "-m", "orders", "api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        cwd=REPO,
    )


async def wait_until_serving(base: str, process: subprocess.Popen[bytes], customers: int) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the API exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")
            try:
                response = await client.post("/orders", json=order_body(customers, f"warmup-{uuid.uuid4().hex[:6]}", 0))
                if response.status_code == 201:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the API did not serve within 60 s")


# -- load ---------------------------------------------------------------------------------------------
async def closed_loop(
    bases: list[str], clients: int, seconds: float, customers: int, keyed: bool, use_httpx: bool = False
) -> Run:
    run = Run()
    tag = f"cl{uuid.uuid4().hex[:6]}"
    counter = iter(range(10**9))
    client = make_client(bases, clients, use_httpx)
    end = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < end:
            n = next(counter)
            headers = {"Idempotency-Key": f"{tag}-{n}"} if keyed else None
            started = time.perf_counter()
            try:
                status = await client.post("/orders", order_body(customers, tag, n), headers)
            except TRANSPORT_ERRORS as exc:
                run.fail(type(exc).__name__)
                continue
            if status == 201:
                run.latencies.append(time.perf_counter() - started)
            else:
                run.fail(status)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(clients)))
    finally:
        run.elapsed = time.perf_counter() - started
        client.close()
    return run


async def open_loop(
    bases: list[str], rate: float, seconds: float, customers: int, keyed: bool, clients: int, use_httpx: bool = False
) -> Run:
    """Requests start every 1/rate s whatever happens; latency includes any wait behind the schedule
    (a request finding every connection busy opens another one, as a crowd of callers would)."""
    run = Run()
    tag = f"ol{uuid.uuid4().hex[:6]}"
    client = make_client(bases, clients * 4, use_httpx)

    async def one(n: int, scheduled: float) -> None:
        headers = {"Idempotency-Key": f"{tag}-{n}"} if keyed else None
        try:
            status = await client.post("/orders", order_body(customers, tag, n), headers)
        except TRANSPORT_ERRORS as exc:
            run.fail(type(exc).__name__)
            return
        if status == 201:
            run.latencies.append(time.perf_counter() - scheduled)
        else:
            run.fail(status)

    t0 = time.perf_counter()
    total = int(rate * seconds)
    tasks = []
    try:
        for n in range(total):
            scheduled = t0 + n / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, scheduled)))
        await asyncio.gather(*tasks)
    finally:
        run.elapsed = time.perf_counter() - t0
        client.close()
    return run


async def raw_inserts(database_url: str, clients: int, seconds: float) -> Run:
    """One transaction per order: the API's events row + outbox row, straight through asyncpg."""
    dsn = to_libpq_url(database_url)
    template = await asyncpg.connect(dsn)
    try:
        event = await template.fetchrow(TEMPLATE_EVENT)
        outbox = await template.fetchrow(TEMPLATE_OUTBOX)
    finally:
        await template.close()
    assert event is not None and outbox is not None, "the API run stored nothing to copy"
    pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)
    run = Run()
    tag = uuid.uuid4().hex[:6]
    counter = iter(range(10**9))
    end = time.perf_counter() + seconds

    async def worker() -> None:
        async with pool.acquire() as conn:
            insert_event = await conn.prepare(INSERT_EVENT)
            insert_outbox = await conn.prepare(INSERT_OUTBOX)
            while time.perf_counter() < end:
                n = next(counter)
                event_id = uuid.uuid4()
                started = time.perf_counter()
                async with conn.transaction():
                    await insert_event.fetch(
                        f"order-raw-{tag}-{n}",
                        event_id,
                        event["event_type"],
                        event["schema_version"],
                        event["data"],
                        event["metadata"],
                    )
                    await insert_outbox.fetch(
                        event_id, outbox["topic"], outbox["key"], outbox["value"], outbox["headers"]
                    )
                run.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(clients)))
    finally:
        run.elapsed = time.perf_counter() - started
        await pool.close()
    return run


def start_ceiling(database_url: str, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(REPO / "benchmarks"), "ceiling_app:app"]
    options = ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    return subprocess.Popen(
        [*command, *options, "--loop", "uvloop", "--http", "httptools"],
        env={**os.environ, "CEILING_DSN": to_libpq_url(database_url)},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        cwd=REPO,
    )


async def ceiling_pass(database_url: str, args: argparse.Namespace) -> Run:
    """Closed loop against ``ceiling_app`` (one uvicorn process, as the API runs); prints rate and CPU."""
    port = free_port()
    ceiling = start_ceiling(database_url, port)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            while True:
                if ceiling.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the ceiling endpoint did not serve within 60 s (its stderr is above)")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.post("/orders", json=order_body(1, "ceiling-warmup", 0))).status_code == 201:
                        break
                await asyncio.sleep(0.2)
        await closed_loop([base], args.clients, min(3.0, args.seconds), args.customers, keyed=False)  # warm-up
        before = cpu_seconds(ceiling.pid)
        run = await closed_loop([base], args.clients, args.seconds, args.customers, keyed=False)
        cpu = (cpu_seconds(ceiling.pid) - before) / max(1, len(run.latencies)) * 1000
    finally:
        os.killpg(ceiling.pid, signal.SIGTERM)
        try:
            ceiling.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(ceiling.pid, signal.SIGKILL)
    print(line("ceiling endpoint, same writes", run))
    print(f"{'ceiling process CPU':<34} {cpu:17.2f} ms per order")
    return run


# -- in process ---------------------------------------------------------------------------------------
async def asgi_post(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """One POST straight through an ASGI app (what uvicorn would hand it); the answer's status."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    await app(scope, receive, send)
    return int(sent[0]["status"])


async def in_process(database_url: str, args: argparse.Namespace) -> None:
    """``--in-process N``: N orders through the orders API's ASGI app in this process, ``--clients`` at a
    time — no HTTP server, no client: the API's own CPU per order, without uvicorn's. ``--profile FILE``
    writes where that CPU goes (cProfile on a CPU-time clock: waits on PostgreSQL do not count)."""
    os.environ.update(
        {
            "ORDERS_DATABASE_URL": database_url,
            "TIERSTREAM_TOPIC_NAMESPACE": f"bench{uuid.uuid4().hex[:6]}.",
            "TIERSTREAM_ENV": "development",
        }
    )
    os.environ.pop("TIERSTREAM_API_TOKENS", None)  # the dev tokens
    configure_logging("orders", "WARNING")
    container = DEFINITION.container()
    app = DEFINITION.build_api(container)
    tag, counter = f"ip{uuid.uuid4().hex[:6]}", iter(range(10**9))
    head = [
        (b"host", b"api"),
        (b"authorization", AUTH["Authorization"].encode()),
        (b"content-type", b"application/json"),
    ]
    statuses: dict[int, int] = {}

    async def worker(orders: int) -> None:
        for _ in range(orders):
            n = next(counter)
            key = [(b"idempotency-key", f"{tag}-{n}".encode())] if args.idempotency_key else []
            status = await asgi_post(
                app, "/orders", json.dumps(order_body(args.customers, tag, n)).encode(), head + key
            )
            statuses[status] = statuses.get(status, 0) + 1

    try:
        async with app.router.lifespan_context(app):
            await asyncio.gather(*(worker(50) for _ in range(args.clients)))  # warm-up
            statuses.clear()
            per_client = max(1, args.in_process // args.clients)
            profiler = cProfile.Profile(time.process_time) if args.profile else None
            before, started = cpu_times(os.getpid()), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            await asyncio.gather(*(worker(per_client) for _ in range(args.clients)))
            if profiler is not None:
                profiler.disable()
            elapsed, after = time.perf_counter() - started, cpu_times(os.getpid())
    finally:
        await container.close()
    orders = per_client * args.clients
    user, system = after[0] - before[0], after[1] - before[1]
    print(
        f"in process: {orders} orders, {args.clients} at a time, {orders / elapsed:.0f}/s, "
        f"CPU {(user + system) / orders * 1000:.3f} ms per order (user {user / orders * 1000:.3f}, "
        f"system {system / orders * 1000:.3f}){' under the profiler' if profiler else ''}; answers {statuses}"
    )
    if profiler is not None:
        report = io.StringIO()
        stats = pstats.Stats(profiler, stream=report)
        stats.sort_stats("tottime").print_stats(60)
        stats.sort_stats("cumulative").print_stats(60)
        await asyncio.to_thread(Path(args.profile).write_text, report.getvalue())
        print(f"profile written to {args.profile}")


# -- main ---------------------------------------------------------------------------------------------
def line(name: str, run: Run) -> str:
    errors = f", errors {json.dumps(run.errors)}" if run.errors else ""
    return (
        f"{name:<34} {run.rate:9.1f}/s   p50 {run.percentile(50):7.1f} ms   p99 {run.percentile(99):7.1f} ms"
        f"   (n={len(run.latencies)}{errors})"
    )


async def main(args: argparse.Namespace) -> None:
    server = (
        args.pg_url or os.environ.get("DATABASE_URL") or "postgresql://tierstream:tierstream@127.0.0.1:55432/postgres"
    )
    if args.api_processes < 1:
        raise SystemExit(f"--api-processes must be at least 1, not {args.api_processes}")
    if args.httpx and args.api_processes > 1:
        raise SystemExit("--httpx loads one API process only; drop --httpx or --api-processes")
    database_url = await prepare_database(server, args.customers)
    if args.in_process:
        try:
            await in_process(database_url, args)
        finally:
            await drop_database(server, database_url)
        return
    ports = [free_port() for _ in range(args.api_processes)]
    apis = [start_api(database_url, port) for port in ports]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base, api in zip(bases, apis, strict=True):
            await wait_until_serving(base, api, args.customers)
        print(
            f"orders API {'pid' if len(apis) == 1 else 'pids'} {', '.join(str(a.pid) for a in apis)} on "
            f"{', '.join(bases)}; {args.clients} clients, {args.seconds:.0f} s per pass, "
            f"{args.customers} customers, CPUs {os.cpu_count()}, Idempotency-Key {'on' if args.idempotency_key else 'off'}, "
            f"client {'httpx' if args.httpx else 'keep-alive HTTP/1.1 on uvloop'}"
        )
        keyed, use_httpx = args.idempotency_key, args.httpx
        await closed_loop(bases, args.clients, min(3.0, args.seconds), args.customers, keyed, use_httpx)  # warm-up
        api_before, client_before = [cpu_times(a.pid) for a in apis], cpu_times(os.getpid())
        peak = await closed_loop(bases, args.clients, args.seconds, args.customers, keyed, use_httpx)
        api_user = sum(cpu_times(a.pid)[0] - before[0] for a, before in zip(apis, api_before, strict=True))
        api_system = sum(cpu_times(a.pid)[1] - before[1] for a, before in zip(apis, api_before, strict=True))
        client_after = cpu_times(os.getpid())
        client_user, client_system = client_after[0] - client_before[0], client_after[1] - client_before[1]
        print(line("API, closed loop (peak)", peak))
        orders = max(1, len(peak.latencies))
        for name, user, system in (
            ("API process CPU" if len(apis) == 1 else f"{len(apis)} API processes CPU", api_user, api_system),
            ("benchmark client CPU", client_user, client_system),
        ):
            print(
                f"{name:<34} {(user + system) / peak.elapsed * 100:8.0f}%    "
                f"{(user + system) / orders * 1000:.2f} ms per order "
                f"(user {user / orders * 1000:.2f}, system {system / orders * 1000:.2f})"
            )
        # Paced before the raw pass: its tens of thousands of rows (and the autovacuum they trigger) would
        # otherwise weigh on the API's latency, which is not what this pass measures.
        rate = args.open_rate or peak.rate / 2
        paced = await open_loop(bases, rate, args.seconds, args.customers, keyed, args.clients, use_httpx)
        print(line(f"API, open loop at {rate:.0f}/s", paced))
        ceiling = None if args.no_ceiling else await ceiling_pass(database_url, args)
        raw = await raw_inserts(database_url, args.clients, args.seconds)
        print(line("asyncpg events+outbox txn", raw))
        print(f"{'ratio API / raw inserts':<34} {peak.rate / raw.rate:9.2f}")
        if ceiling is not None:
            print(f"{'ratio ceiling / raw inserts':<34} {ceiling.rate / raw.rate:9.2f}")
    finally:
        for api in apis:
            os.killpg(api.pid, signal.SIGTERM)
        for api in apis:
            try:
                api.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(api.pid, signal.SIGKILL)
        await drop_database(server, database_url)


async def drop_database(server: str, database_url: str) -> None:
    admin = await asyncpg.connect(to_libpq_url(server))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database_url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", "-n", type=int, default=16, help="concurrent clients (N)")
    parser.add_argument("--seconds", "-t", type=float, default=10.0, help="duration of each pass (T)")
    parser.add_argument("--customers", type=int, default=500, help="registered customers orders spread over")
    parser.add_argument("--idempotency-key", action="store_true", help="send a fresh Idempotency-Key per command")
    parser.add_argument(
        "--api-processes", type=int, default=1, metavar="K", help="API processes sharing the load (default 1)"
    )
    parser.add_argument(
        "--no-ceiling", action="store_true", help="skip the ceiling pass (the thinnest endpoint making the same writes)"
    )
    parser.add_argument("--httpx", action="store_true", help="load with httpx (the former client) instead")
    parser.add_argument("--pg-url", help="PostgreSQL server URL (default: $DATABASE_URL, else the dev server)")
    parser.add_argument(
        "--open-rate",
        type=float,
        default=0,
        metavar="R",
        help="pace the open loop at R orders/s (default: half the measured peak); compares latency across versions",
    )
    parser.add_argument(
        "--in-process",
        type=int,
        default=0,
        metavar="ORDERS",
        help="instead: this many orders through the ASGI app in this process (no HTTP server); CPU per order",
    )
    parser.add_argument("--profile", metavar="FILE", help="with --in-process: write a CPU-time profile (cProfile)")
    return parser.parse_args()


if __name__ == "__main__":
    uvloop.run(main(parse_args()))
