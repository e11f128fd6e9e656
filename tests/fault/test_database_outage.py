"""PostgreSQL stopped under a running orders API: 503 + Retry-After, nothing half-written, and the
same API instance serves again once the database is back (the pool drops closed connections), without a
restart.

This test starts its OWN PostgreSQL cluster with deploy/local/pg-local.sh (private PG_RUN_DIR, free
port) — the shared test server is never touched — and stops it at the end, by the script.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from orders.__main__ import DEFINITION
from orders.application.credit_terms import CreditTermsProjector
from orders.config import OrdersSettings
from shared.db.migrations import upgrade
from shared.events import customers as customer_events
from shared.events.envelope import Envelope
from shared.runtime import Container
from shared.testing.infra import asyncpg_url, repo_root, with_database

pytestmark = pytest.mark.fault

PG_SCRIPT = repo_root() / "deploy" / "local" / "pg-local.sh"


@dataclass
class PrivatePostgres:
    run_dir: Path
    port: int
    url: str = ""

    def _script(self, command: str) -> str:
        env = {**os.environ, "PG_RUN_DIR": str(self.run_dir), "PG_PORT": str(self.port)}
        result = subprocess.run(
            ["bash", str(PG_SCRIPT), command], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"pg-local.sh {command} failed:\n{result.stderr[-2000:]}"
        return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""

    def start(self) -> str:
        self.url = self._script("start")
        return self.url

    def stop(self) -> None:
        self._script("stop")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    # /tmp, not pytest's tmp_path: the `postgres` OS user must be able to traverse every parent.
    base = Path(tempfile.mkdtemp(prefix="tierstream-fault-pg-"))
    base.chmod(0o711)
    pg = PrivatePostgres(run_dir=base / "pg", port=free_port())
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def orders_api(private_pg: PrivatePostgres) -> AsyncIterator[tuple[httpx.AsyncClient, Container[Any]]]:
    database_url = with_database(asyncpg_url(private_pg.url), f"orders_{uuid.uuid4().hex[:8]}")
    await upgrade(DEFINITION.migrations, database_url)
    container = DEFINITION.container(OrdersSettings(database_url=database_url, TIERSTREAM_ENV="test"))
    transport = httpx.ASGITransport(app=DEFINITION.build_api(container), raise_app_exceptions=False)
    headers = {"Authorization": "Bearer dev-admin"}
    async with httpx.AsyncClient(transport=transport, base_url="http://orders", headers=headers, timeout=30) as c:
        yield c, container
    await container.close()


async def register_customer(container: Container[Any], customer_id: str) -> None:
    event = customer_events.CustomerRegistered(customer_id=customer_id, company_name="Acme", region="East")
    envelope = Envelope.wrap(
        event,
        producer="customers",
        aggregate_type="customer",
        aggregate_id=customer_id,
        aggregate_version=1,
        customer_id=customer_id,
        correlation_id="seed",
    )
    async with container.engine.begin() as conn:
        await CreditTermsProjector().apply(conn, [envelope])


@dataclass
class Attempt:
    order_id: str
    status: int
    retry_after: str | None
    body: dict[str, Any] = field(default_factory=dict)


def order(order_id: str) -> dict[str, Any]:
    line = {"sku": "SKU-1", "description": "goods", "quantity": 2, "unit_price": "10.00"}
    return {"customer_id": "c-outage", "order_id": order_id, "lines": [line]}


async def place(client: httpx.AsyncClient, order_id: str) -> Attempt:
    response = await client.post("/orders", json=order(order_id), headers={"Idempotency-Key": f"key-{order_id}"})
    return Attempt(order_id, response.status_code, response.headers.get("Retry-After"), response.json())


async def test_commands_get_503_while_the_database_is_down_and_201_again_after_it_returns(
    orders_api: tuple[httpx.AsyncClient, Container[Any]], private_pg: PrivatePostgres
) -> None:
    client, container = orders_api
    await register_customer(container, "c-outage")
    attempts: list[Attempt] = []
    stop = asyncio.Event()

    async def keep_placing(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            attempts.append(await place(client, f"o-{worker}-{n}"))
            await asyncio.sleep(0.01)

    workers = [asyncio.create_task(keep_placing(w)) for w in range(4)]
    try:
        deadline = time.monotonic() + 30
        while sum(a.status == 201 for a in attempts) < 20:
            assert time.monotonic() < deadline, f"no progress before the outage: {attempts[-3:]}"
            await asyncio.sleep(0.05)
        await asyncio.to_thread(private_pg.stop)  # fast shutdown: in-flight transactions are aborted
        stopped_at = len(attempts)
        deadline = time.monotonic() + 30
        while sum(a.status == 503 for a in attempts[stopped_at:]) < 20:
            assert time.monotonic() < deadline, f"no 503s while the database is down: {attempts[-3:]}"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*workers)

    unexpected = [a for a in attempts if a.status not in (201, 503)]
    assert unexpected == [], unexpected[:3]
    refused = [a for a in attempts if a.status == 503]
    assert all(a.retry_after and int(a.retry_after) > 0 for a in refused)
    assert all("nothing was changed" in a.body["detail"] for a in refused)
    assert all(a.status == 503 for a in attempts[stopped_at + 8 :]), "once down, every command is refused"

    await asyncio.to_thread(private_pg.start)
    again = await place(client, "o-after-restart")  # the same app, engine and pool
    assert again.status == 201, again.body

    # nothing half-written: every stored event has its outbox row and vice versa, and every 201 is stored
    async with container.engine.connect() as conn:
        events = set(await conn.scalars(text("SELECT event_id FROM events")))
        outbox = set(await conn.scalars(text("SELECT message_id FROM outbox")))
        streams = set(await conn.scalars(text("SELECT DISTINCT stream_id FROM events")))
    assert events == outbox
    accepted = {f"order-{a.order_id}" for a in attempts if a.status == 201} | {"order-o-after-restart"}
    assert accepted <= streams
    assert all(a.order_id in {s.removeprefix("order-") for s in streams} for a in attempts if a.status == 201)

    # a refused command retried with its key now runs exactly once. Had it committed after all (the
    # connection died between COMMIT and its acknowledgement), its key committed with it: the retry then
    # gets 409 (response not recorded) and the order is there once.
    for attempt in refused[:5]:
        retried = await place(client, attempt.order_id)
        if retried.status == 409:
            assert retried.body["code"] in {"idempotency_key_in_flight", "idempotency_response_lost"}
            assert (await client.get(f"/orders/{attempt.order_id}")).status_code == 200
        else:
            assert retried.status == 201, retried.body
    async with container.engine.connect() as conn:
        placed = await conn.scalar(text("SELECT count(*) FROM events WHERE event_type = 'OrderPlaced'"))
        distinct = await conn.scalar(text("SELECT count(DISTINCT stream_id) FROM events"))
    assert placed == distinct
