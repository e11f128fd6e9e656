"""What a Kafka outage does to the outbox relay: is everything published once the broker is back, how
soon, and how many copies?

    uv run python benchmarks/relay_outage.py --outage-s 40 [--rate 20] [--keep-producer]

1. Starts a PRIVATE broker with deploy/local/kafka-local.sh (its own run directory under /tmp, a port
   below the ephemeral range: a client retrying a closed port in that range can end up connected to
   itself on it, and the broker could not start there again) and a fresh, migrated orders database on the
   PostgreSQL server of ``DATABASE_URL`` (default: the dev server).
2. Runs one ``OutboxRelay`` as the services do (``shared.runtime.run_relay``: a new producer after failed
   sends) while orders are written through the event store at ``--rate`` per second.
3. After 5 s stops the broker (SIGTERM) for ``--outage-s`` — longer than the producer's request
   timeout (``--request-timeout-ms``) reproduces the failure aiokafka's idempotent producer had (``OutOfOrderSequenceNumber`` for
   good) — then starts it again on its data and writes 10 s more.
4. Prints how long the outbox took to drain after the writes stopped, and how many records the topic
   holds per event (1 = no duplicate).

``--keep-producer`` keeps the first producer (the relay before the fix), for comparison: the outbox then
does not drain, and the script says so after 90 s. Stops the broker and drops the database at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
from sqlalchemy import text

from orders.domain.order import Order, OrderLine
from shared.db.engine import create_engine, to_asyncpg_url, to_libpq_url
from shared.db.migrations import upgrade
from shared.events import orders as contract
from shared.events.registry import parse_envelope
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import PostgresEventStore
from shared.messaging.kafka import PRODUCER_REQUEST_TIMEOUT_MS, ensure_topics, make_producer
from shared.messaging.relay import OutboxRelay
from shared.settings import DEV_DB_PASSWORD, DEV_DB_USER, DEV_PG_PORT
from shared.testing import infra
from shared.testing.kafka import read_topic


async def main(args: argparse.Namespace) -> None:
    dev = f"postgresql://{DEV_DB_USER}:{DEV_DB_PASSWORD}@127.0.0.1:{DEV_PG_PORT}/postgres"
    pg = os.environ.get("DATABASE_URL", dev)
    name = f"bench_relay_outage_{uuid.uuid4().hex[:6]}"
    url = infra.with_database(to_asyncpg_url(pg), name)
    await upgrade(importlib.import_module("orders.__main__").DEFINITION.migrations, url)
    engine = create_engine(url)
    broker = infra.PrivateKafka()
    bootstrap = broker.start()
    try:
        topic = f"bench{uuid.uuid4().hex[:6]}.crm.orders.v1"
        await ensure_topics(bootstrap, [topic], partitions=3)

        def new_producer():  # type: ignore[no-untyped-def]
            return make_producer(bootstrap, client_id="bench-relay", request_timeout_ms=args.request_timeout_ms)

        producer = new_producer()
        await producer.start()
        relay = OutboxRelay(
            engine, producer, service="bench-relay-outage", new_producer=None if args.keep_producer else new_producer
        )
        stop = asyncio.Event()
        running = asyncio.create_task(relay.run(stop))
        repo = AggregateRepository(PostgresEventStore(engine), Order, producer=contract.PRODUCER, topic=topic)
        line = [OrderLine(sku="S", description="d", quantity=1, unit_price=Decimal("10"))]
        placed = 0

        async def place_for(seconds: float) -> None:
            nonlocal placed
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                order = Order.place(
                    f"o-{placed}", f"c-{placed % 7}", line, currency="CNY", placed_at=datetime.now(UTC), payment_days=30
                )
                await repo.save(order, correlation_id="bench")
                placed += 1
                await asyncio.sleep(1 / args.rate)

        await place_for(5)
        os.kill(broker.pid, signal.SIGTERM)
        cpu_before = time.process_time()
        print(f"broker stopped after {placed} orders; writing on for {args.outage_s:.0f} s", flush=True)
        await place_for(args.outage_s)
        cpu_outage = time.process_time() - cpu_before
        await asyncio.to_thread(broker.start, keep_data=True)
        print(
            f"broker back after {placed} orders; CPU of this process (relay + writer) during the outage: "
            f"{cpu_outage:.1f} s in {args.outage_s:.0f} s",
            flush=True,
        )
        await place_for(10)
        started, left = time.monotonic(), -1
        while time.monotonic() - started < 90:
            async with engine.connect() as conn:
                left = int(await conn.scalar(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")) or 0)
            if left == 0:
                break
            await asyncio.sleep(0.5)
        drained = time.monotonic() - started
        stop.set()
        await running
        await relay.close()
        records = await read_topic(bootstrap, topic, expect=10**9, timeout_s=8)
        copies = Counter(parse_envelope(r.value).event_id for r in records)
        print(
            f"orders {placed}; unsent after the writes stopped: "
            + (f"0 within {drained:.1f} s" if left == 0 else f"{left} still after {drained:.0f} s (stuck)")
        )
        print(
            f"topic: {len(records)} records, {len(copies)} distinct events, "
            f"{sum(1 for c in copies.values() if c > 1)} published more than once (max {max(copies.values())} copies)"
        )
        await engine.dispose()
    finally:
        broker.remove()
        conn = await asyncpg.connect(to_libpq_url(pg))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage-s", type=float, default=40.0, help="how long the broker is away (default 40)")
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second written (default 20)")
    parser.add_argument(
        "--request-timeout-ms",
        type=int,
        default=PRODUCER_REQUEST_TIMEOUT_MS,
        help=f"the relay producer's request timeout (default {PRODUCER_REQUEST_TIMEOUT_MS}, the services')",
    )
    parser.add_argument("--keep-producer", action="store_true", help="the relay before the fix, for comparison")
    asyncio.run(main(parser.parse_args()))
