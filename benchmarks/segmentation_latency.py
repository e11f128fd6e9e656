"""End-to-end latency: ``POST /orders`` on the orders API → the new orders_count visible in segmentation.

    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:39092 DATABASE_URL=postgresql://tierstream:tierstream@127.0.0.1:35432/postgres
    uv run python benchmarks/segmentation_latency.py --rate 20 --seconds 30 --customers 50

1. Starts ``customers``, ``orders`` and ``segmentation`` as ``python -m <service> dev`` processes
   (tierstream.stack.start_service) on free loopback ports, in a fresh topic namespace
   ``benchlat<random>.`` and fresh databases ``benchlat<random>_<service>`` on the shared servers.
2. Registers ``--customers`` customers through the customers API and waits until the orders service
   knows each of them (``GET /customers/{id}/credit`` answers 200: orders refuses unknown customers).
3. Open loop: one order every 1/``--rate`` s for ``--seconds`` s, customers round-robin; after each 201
   a poller reads ``GET /customers/{id}/segment`` on segmentation every ``--poll-ms`` ms until
   orders_count reaches the number of orders placed for that customer so far. Latency = from just
   before the POST to the first read that shows it (so it includes the POST itself, the orders outbox
   relay, Kafka, the segmentation consumer's transaction and up to one poll interval).
4. Prints p50 / p99 / max (and the POST latency alone), then stops the three processes it started
   (by PID), drops their databases and deletes the namespace's topics.

Everything (the three services, Kafka, PostgreSQL, this client) shares the machine's CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from shared.db.engine import to_libpq_url
from tierstream.stack import Infra, StackConfig, auth_headers, start_service, stop_service, wait_ready

SERVICES = ("customers", "orders", "segmentation")
DEFAULT_PG = "postgresql://tierstream:tierstream@127.0.0.1:35432/postgres"
DEFAULT_KAFKA = "127.0.0.1:39092"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def order_body(customer_id: str, order_id: str) -> dict[str, object]:
    return {
        "customer_id": customer_id,
        "order_id": order_id,
        "lines": [
            {"sku": "85123A", "description": "WHITE HANGING HEART T-LIGHT HOLDER", "quantity": 6, "unit_price": "2.55"},
            {"sku": "71053", "description": "WHITE METAL LANTERN", "quantity": 6, "unit_price": "3.39"},
        ],
    }


async def register_customers(config: StackConfig, ids: list[str], timeout_s: float = 120) -> None:
    headers = auth_headers()
    async with httpx.AsyncClient(headers=headers, timeout=10) as client:
        for cid in ids:
            response = await client.post(
                f"{config.url('customers')}/customers",
                json={"customer_id": cid, "company_name": f"Latency Co {cid}", "region": "UK"},
            )
            if response.status_code != 201:
                raise SystemExit(f"registering {cid}: {response.status_code} {response.text[:300]}")
        deadline = time.monotonic() + timeout_s
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            for cid in sorted(pending):
                response = await client.get(f"{config.url('orders')}/customers/{cid}/credit")
                if response.status_code == 200:
                    pending.discard(cid)
            if pending:
                await asyncio.sleep(0.2)
        if pending:
            raise SystemExit(f"orders did not learn {len(pending)} customers within {timeout_s:.0f} s")


async def measure(config: StackConfig, ids: list[str], rate: float, seconds: float, poll_s: float) -> dict[str, object]:
    latencies: list[float] = []
    posts: list[float] = []
    errors: dict[str, int] = {}
    placed: dict[str, int] = dict.fromkeys(ids, 0)
    tag = uuid.uuid4().hex[:6]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)

    async with httpx.AsyncClient(headers=auth_headers(), timeout=30, limits=limits) as client:

        async def wait_visible(cid: str, expected: int, started: float, give_up: float) -> None:
            while time.perf_counter() < give_up:
                response = await client.get(f"{config.url('segmentation')}/customers/{cid}/segment")
                if response.status_code == 200 and response.json()["orders_count"] >= expected:
                    latencies.append(time.perf_counter() - started)
                    return
                await asyncio.sleep(poll_s)
            errors["not visible within 60 s"] = errors.get("not visible within 60 s", 0) + 1

        async def one(n: int) -> None:
            cid = ids[n % len(ids)]
            started = time.perf_counter()
            try:
                response = await client.post(f"{config.url('orders')}/orders", json=order_body(cid, f"{tag}-{n}"))
            except httpx.TransportError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            if response.status_code != 201:
                errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
                return
            posts.append(time.perf_counter() - started)
            placed[cid] += 1
            await wait_visible(cid, placed[cid], started, started + 60)

        t0 = time.perf_counter()
        tasks = []
        for n in range(int(rate * seconds)):
            delay = t0 + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return {
        "orders": len(posts),
        "visible": len(latencies),
        "rate_per_s": rate,
        "seconds": seconds,
        "poll_ms": round(poll_s * 1000),
        "e2e_p50_ms": round(percentile(latencies, 50), 1),
        "e2e_p99_ms": round(percentile(latencies, 99), 1),
        "e2e_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "post_p50_ms": round(percentile(posts, 50), 1),
        "post_p99_ms": round(percentile(posts, 99), 1),
        "errors": errors,
    }


async def cleanup(args: argparse.Namespace, config: StackConfig) -> None:
    admin = await asyncpg.connect(to_libpq_url(args.pg_url))
    try:
        for service in SERVICES:
            await admin.execute(f'DROP DATABASE IF EXISTS "{config.database_prefix}{service}" WITH (FORCE)')
    finally:
        await admin.close()
    kafka = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
    await kafka.start()
    try:
        doomed = [t for t in await kafka.list_topics() if t.startswith(config.namespace)]
        if doomed:
            await kafka.delete_topics(doomed)
    finally:
        await kafka.close()


async def main(args: argparse.Namespace) -> None:
    tag = uuid.uuid4().hex[:8]
    state = Path(tempfile.mkdtemp(prefix="benchlat-"))
    config = StackConfig(
        ports={s: free_port() for s in SERVICES},
        partitions=args.partitions,
        namespace=f"benchlat{tag}.",
        database_prefix=f"benchlat{tag}_",
        state_dir=state,
        extra_env={"LOG_LEVEL": "WARNING"},
    )
    infra = Infra(bootstrap_servers=args.bootstrap, pg_url=args.pg_url)
    print(f"starting {', '.join(SERVICES)} in {config.namespace} (logs in {config.log_dir}) …")
    try:
        for service in SERVICES:
            start_service(config, infra, service)
        for service in SERVICES:
            await asyncio.to_thread(wait_ready, config, service, 180)
        ids = [f"lat-{tag}-{i}" for i in range(args.customers)]
        started = time.perf_counter()
        await register_customers(config, ids)
        print(f"{len(ids)} customers registered and known to orders in {time.perf_counter() - started:.1f} s")
        result = await measure(config, ids, args.rate, args.seconds, args.poll_ms / 1000)
    finally:
        for service in SERVICES:
            stop_service(config, service)
        await cleanup(args, config)
    for key, value in result.items():
        print(f"{key:>14}: {value}")
    print(json.dumps(result))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second (open loop)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--poll-ms", type=float, default=50.0, help="read-API poll interval per pending order")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA))
    parser.add_argument("--pg-url", default=os.environ.get("DATABASE_URL", DEFAULT_PG), help="PostgreSQL server URL")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
