"""Worker roles as real processes serve /health/* and /metrics on ``<PREFIX>_METRICS_PORT``.

A ``python -m customers relay`` publishes three CustomerRegistered rows of its outbox to Kafka, a
``python -m orders consume`` applies them (group ``orders.credit-terms``), both on the real broker and
PostgreSQL and the test's own topics. Their listeners answer live and ready, their metrics carry the
numbers of what they did, and SIGTERM stops both cleanly. A port already taken stops a role at start
with a message naming the setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from customers.config import CustomersSettings
from shared.db.engine import create_engine
from shared.events.topics import Topics
from shared.messaging.outbox import OutboxMessage, write_outbox
from shared.serving import StartupError, listen
from shared.testing.events import customer_registered

pytestmark = pytest.mark.integration

CUSTOMERS = ["c-1", "c-2", "c-3"]
GROUP = "orders.credit-terms"
#: bounds on waiting for a state (a hang guard, not a speed requirement)
WAIT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Role:
    """A real ``python -m <service> <role>``; logs go to a file (no pipe to fill up)."""

    service: str
    role: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="worker-http-", suffix=".log")[1]))
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Role:
        env = {
            **os.environ,
            **self.env,
            f"{self.service.upper()}_METRICS_PORT": str(self.port),
            "TIERSTREAM_ENV": "test",
            "LOG_FORMAT": "console",
        }
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.service, self.role], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    async def get(self, path: str) -> httpx.Response | None:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                return await http.get(self.url + path)
        except httpx.TransportError:
            return None

    async def until(self, path: str, accept: Callable[[httpx.Response], bool]) -> httpx.Response:
        """Poll ``path`` until ``accept`` holds; fail with the process's log if it exits or never does."""
        assert self.proc is not None
        deadline = asyncio.get_running_loop().time() + WAIT_S
        last: httpx.Response | None = None
        while True:
            assert self.proc.poll() is None, f"{self.service} {self.role} exited:\n{self.tail()}"
            last = await self.get(path)
            if last is not None and accept(last):
                return last
            answer = None if last is None else (last.status_code, last.text[-500:])
            assert asyncio.get_running_loop().time() < deadline, f"{path}: {answer}\n{self.tail()}"
            await asyncio.sleep(0.2)

    async def terminate(self) -> int:
        """SIGTERM by PID and wait for the exit."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, WAIT_S)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            self.log.unlink()


def samples(text: str, name: str, **labels: str) -> list[float]:
    """Values of the samples called ``name`` whose labels include ``labels``."""
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]


@pytest.fixture
def roles() -> Iterator[list[Role]]:
    started: list[Role] = []
    yield started
    for role in started:
        role.cleanup()


@pytest.fixture
async def customers_db(database_factory) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    yield await database_factory("customers")


async def test_a_relay_and_a_consumer_report_health_and_metrics_and_stop_cleanly_on_sigterm(
    database_factory,  # type: ignore[no-untyped-def]
    customers_db: str,
    topics: Topics,
    kafka_bootstrap: str,
    roles: list[Role],
) -> None:
    shared_env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TIERSTREAM_TOPIC_NAMESPACE": topics.namespace}
    relay = Role("customers", "relay", {**shared_env, "CUSTOMERS_DATABASE_URL": customers_db}).start()
    roles.append(relay)
    orders_db = await database_factory("orders")
    consumer = Role("orders", "consume", {**shared_env, "ORDERS_DATABASE_URL": orders_db}).start()
    roles.append(consumer)
    group = f"{topics.namespace}{GROUP}"

    for role in (relay, consumer):
        live = await role.until("/health/live", lambda r: r.status_code == 200)
        assert live.json() == {"status": "ok", "service": role.service}
    # ready = the consumer holds partitions of the test's topic; the relay's producer is connected
    ready = await consumer.until("/health/ready", lambda r: r.status_code == 200)
    assert ready.json()["checks"] == {"roles": True, "database": True, "group_joined": True}
    ready = await relay.until("/health/ready", lambda r: r.status_code == 200)
    assert ready.json()["checks"] == {"roles": True, "database": True, "kafka_producer": True}
    # the backlog gauge has a value from the relay's first batches on, not only after its first purge
    await relay.until("/metrics", lambda r: samples(r.text, "tierstream_outbox_backlog", service="customers") == [0])

    engine = create_engine(customers_db)
    try:
        async with engine.begin() as conn:
            messages = [
                OutboxMessage.from_envelope(customer_registered(c, producer="customers"), topics.customers)
                for c in CUSTOMERS
            ]
            await write_outbox(conn, messages)
    finally:
        await engine.dispose()

    def applied_all(response: httpx.Response) -> bool:
        # the lag is reported after the poll whose batch was counted as applied: wait for both
        lag = samples(response.text, "tierstream_consumer_lag", group=group, topic=topics.customers)
        applied = samples(response.text, "tierstream_events_applied_total", group=group)
        return applied == [len(CUSTOMERS)] and bool(lag) and all(value == 0 for value in lag)

    metrics = (await consumer.until("/metrics", applied_all)).text
    lag = samples(metrics, "tierstream_consumer_lag", group=group, topic=topics.customers)
    assert lag and all(value == 0 for value in lag), lag  # one sample per partition that delivered events
    assert samples(metrics, "tierstream_projection_latency_seconds_count", group=group) == [len(CUSTOMERS)]
    # nothing dead-lettered, and the series exists at 0 from the start (an alert can tell 0 from "not scraped")
    assert samples(metrics, "tierstream_events_deadlettered_total", group=group) == [0]

    relay_metrics = (await relay.get("/metrics")) or pytest.fail("the relay stopped answering")
    assert samples(relay_metrics.text, "tierstream_outbox_published_total", service="customers") == [len(CUSTOMERS)]
    assert samples(relay_metrics.text, "tierstream_events_applied_total") == [], "a relay applies nothing"

    for role in (consumer, relay):
        assert await role.terminate() == 0, role.tail()
        assert "service.stopped" in role.tail(), role.tail()
        assert await role.get("/health/live") is None, "the listener closes with the process"


async def test_a_role_whose_metrics_port_is_taken_fails_at_start_naming_the_setting(roles: list[Role]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        # The listener is bound before the service connects to anything: no database or broker needed.
        env = {"ORDERS_DATABASE_URL": "postgresql+asyncpg://nobody:nothing@127.0.0.1:9/none"}
        sweep = Role("orders", "sweep", env, port=port).start()
        roles.append(sweep)
        assert sweep.proc is not None
        code = await asyncio.to_thread(sweep.proc.wait, WAIT_S)
    assert code == 1, sweep.tail()
    assert f"ORDERS_METRICS_PORT={port}: cannot listen on 127.0.0.1:{port}" in sweep.tail(), sweep.tail()
    assert "Traceback" not in sweep.tail()


def test_binding_a_taken_api_port_names_the_http_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with pytest.raises(StartupError, match=f"CUSTOMERS_HTTP_PORT={port}: cannot listen"):
            listen(CustomersSettings(http_port=port), "http_host", "http_port")
    sock = listen(CustomersSettings(http_port=port), "http_host", "http_port")  # free again
    sock.close()
