"""Support for the segmentation fault tests: a deterministic contract-event stream, real
``python -m segmentation consume`` processes, and comparable snapshots of the projection.

Comparison rules follow ``segmentation.application.rebuild.COMPARED``: the facts tables in full, and
``customer_segments`` without its bookkeeping columns (wall-clock ``updated_at`` / ``first_seen_at``, the
batching-dependent ``segmentation_version``, the time-derived ``alert_id`` and the random ``facts_token``).
Grades depend on the clock, so both databases are swept at one fixed instant before they are compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text

from segmentation.__main__ import DEFINITION
from segmentation.application.rebuild import COMPARED
from segmentation.application.sweep import sweep
from segmentation.bootstrap import FixedClock, build_projection, wire
from segmentation.config import SegmentationSettings
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.registry import parse_envelope
from shared.events.topics import Topics
from shared.messaging.consumer import ProjectionConsumer
from shared.runtime import Container
from shared.testing.kafka import produce

#: The engine's clock in every process of these tests (events lie days before it, deadlines after it).
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
#: The instant both databases are swept at before they are compared.
T_COMPARE = T0 + timedelta(hours=6)
GROUP = "segmentation.projector"
KINDS = ("customers", "orders", "feedback")

Record = tuple[bytes, bytes]
Stream = dict[str, list[Record]]  # kind → (key, value) in per-customer order


def group_of(namespace: str) -> str:
    return f"{namespace}{GROUP}"


def _wrap(
    payload: EventPayload, cid: str, aggregate: tuple[str, str], version: int, at: datetime, event_id: uuid.UUID
) -> Envelope:
    return Envelope.wrap(
        payload,
        producer=aggregate[0] + "s",
        aggregate_type=aggregate[0],
        aggregate_id=aggregate[1],
        aggregate_version=version,
        customer_id=cid,
        correlation_id=f"corr-{aggregate[1]}",
        occurred_at=at,
        event_id=event_id,
    )


def customer_stream(rng: random.Random, cid: str, n: int) -> Stream:
    """One customer's events per topic: registration, orders with cancellations and returns, complaints,
    surveys. Deterministic for a given ``rng`` state (event ids are drawn from it too)."""
    out: Stream = {k: [] for k in KINDS}
    key = cid.encode()

    def add(kind: str, payload: EventPayload, aggregate: tuple[str, str], version: int, at: datetime) -> None:
        env = _wrap(payload, cid, aggregate, version, at, uuid.UUID(int=rng.getrandbits(128), version=4))
        out[kind].append((key, env.to_json()))

    if n % 7:  # some customers are never registered: their facts start from placeholders
        add(
            "customers",
            customers.CustomerRegistered(customer_id=cid, company_name=f"Co {n}", region="East"),
            ("customer", cid),
            1,
            T0 - timedelta(days=420),
        )
    for k in range(rng.randint(1, 9)):
        order_id = f"{cid}-o{k}"
        at = T0 - timedelta(days=rng.randint(1, 500), hours=rng.randint(0, 20))
        money = Money(amount=Decimal(rng.randint(10, 20_000)))
        placed = orders.OrderPlaced(
            order_id=order_id,
            customer_id=cid,
            lines=[orders.OrderLine(sku="S", quantity=1, unit_price=money)],
            total=money,
            placed_at=at,
            due_date=(at + timedelta(days=30)).date(),
            payment_days=30,
        )
        add("orders", placed, ("order", order_id), 1, at)
        roll = rng.random()
        if roll < 0.15:
            cancelled = orders.OrderCancelled(order_id=order_id, amount=money, reason="changed mind")
            add("orders", cancelled, ("order", order_id), 2, at + timedelta(hours=2))
        elif roll < 0.4:
            returned = orders.OrderReturned(
                order_id=order_id,
                return_id=f"{order_id}-r",
                amount=Money(amount=Decimal(rng.randint(1, 9))),
                reason="damaged",
            )
            add("orders", returned, ("order", order_id), 2, at + timedelta(days=3))
    for k in range(rng.choice((0, 0, 1, 2))):
        complaint_id = f"{cid}-c{k}"
        filed = T0 - timedelta(days=rng.randint(1, 20))
        add(
            "feedback",
            feedback.ComplaintFiled(
                complaint_id=complaint_id,
                customer_id=cid,
                category="delivery",
                severity=rng.choice(("low", "high")),
                summary="late",
                filed_at=filed,
                acknowledge_by=filed + timedelta(days=1),
                resolve_by=filed + timedelta(days=rng.choice((2, 60))),
            ),
            ("complaint", complaint_id),
            1,
            filed,
        )
        if rng.random() < 0.5:
            add(
                "feedback",
                feedback.ComplaintAcknowledged(complaint_id=complaint_id),
                ("complaint", complaint_id),
                2,
                filed + timedelta(hours=3),
            )
    if rng.random() < 0.5:
        add(
            "feedback",
            feedback.SurveyAnswered(survey_id=f"{cid}-s", customer_id=cid, nps=rng.randint(0, 10)),
            ("survey", f"{cid}-s"),
            1,
            T0 - timedelta(days=rng.randint(1, 100)),
        )
    return out


def build_stream(seed: int, customers_count: int, prefix: str = "c") -> list[Stream]:
    """Per customer, that customer's stream (so callers can cut or interleave it)."""
    rng = random.Random(seed)
    return [customer_stream(rng, f"{prefix}-{n:03d}", n) for n in range(customers_count)]


def merge(streams: Sequence[Stream]) -> Stream:
    out: Stream = {k: [] for k in KINDS}
    for s in streams:
        for k in KINDS:
            out[k].extend(s[k])
    return out


def count(stream: Stream) -> int:
    return sum(len(v) for v in stream.values())


def event_ids(stream: Stream) -> set[str]:
    return {str(parse_envelope(v).event_id) for records in stream.values() for _, v in records}


async def publish(bootstrap: str, names: Topics, stream: Stream, kinds: Sequence[str] = KINDS) -> int:
    for kind in kinds:
        if stream[kind]:
            await produce(bootstrap, getattr(names, kind), stream[kind])
    return sum(len(stream[k]) for k in kinds)


# -- processes ------------------------------------------------------------------------------------
@dataclass
class ConsumerProcess:
    """A real ``python -m segmentation consume``; logs go to a file (no pipe to fill up)."""

    database_url: str
    bootstrap: str
    namespace: str
    batch_size: int = 50
    #: short, so that after a SIGKILL the group hands the dead member's partitions on within seconds
    #: (the local test broker allows down to 1 s: group.min.session.timeout.ms in kafka-local.sh)
    session_timeout_ms: int = 3000
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="seg-consume-", suffix=".log")[1]))
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ConsumerProcess:
        env = {
            **os.environ,
            "SEGMENTATION_DATABASE_URL": self.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "TIERSTREAM_TOPIC_NAMESPACE": self.namespace,
            "TIERSTREAM_ENV": "test",
            "SEGMENTATION_CLOCK_START": T0.isoformat(),
            "SEGMENTATION_CONSUMER_BATCH_SIZE": str(self.batch_size),
            "SEGMENTATION_CONSUMER_SESSION_TIMEOUT_MS": str(self.session_timeout_ms),
            "LOG_FORMAT": "console",
        }
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "segmentation", "consume"], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, the poll in flight is lost mid-transaction."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    async def terminate(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait for the graceful exit (SIGKILL if it does not come)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def cleanup(self) -> None:
        self.kill()
        with contextlib.suppress(OSError):
            self.log.unlink()


# -- databases ------------------------------------------------------------------------------------
def container(database_url: str, bootstrap: str, namespace: str) -> Container[SegmentationSettings]:
    # Fields with an environment alias are passed by the alias (by field name they would be ignored).
    settings = SegmentationSettings(
        database_url=database_url, TIERSTREAM_TOPIC_NAMESPACE=namespace, KAFKA_BOOTSTRAP_SERVERS=bootstrap
    )
    c = DEFINITION.container(settings)
    c.parts["clock"] = FixedClock(T0)
    wire(c)
    return c


async def consumed(c: Container[Any], group: str) -> int:
    async with c.engine.connect() as conn:
        return int(
            await conn.scalar(
                text("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE consumer_group = :g"),
                {"g": group},
            )
            or 0
        )


async def wait_consumed(
    c: Container[Any], group: str, at_least: int, *, timeout_s: float, procs: Sequence[ConsumerProcess] = ()
) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        done = await consumed(c, group)
        if done >= at_least:
            return done
        for p in procs:
            assert p.alive, f"consumer exited early (rc={p.proc and p.proc.returncode}):\n{p.tail()}"
        assert loop.time() < deadline, f"only {done}/{at_least} offsets consumed in {timeout_s}s\n" + "\n".join(
            p.tail() for p in procs
        )
        await asyncio.sleep(0.05)


async def consume_in_process(
    c: Container[Any], names: Topics, group: str, total: int, *, timeout_s: float = 30
) -> None:
    """A single uninterrupted consumer (the reference), run until ``total`` offsets are stored."""
    consumer = ProjectionConsumer(
        c.engine,
        build_projection(c),
        bootstrap_servers=c.settings.kafka_bootstrap_servers,
        group_id=group,
        topics=[names.customers, names.orders, names.feedback],
        deadletter_topic=names.deadletter,
        batch_size=c.settings.consumer_batch_size,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while await consumed(c, group) < total:
            assert not task.done(), task.exception() if task.done() else ""
            assert loop.time() < deadline, "the reference consumer did not catch up"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


async def sweep_at(c: Container[Any], now: datetime = T_COMPARE) -> None:
    await sweep(c.engine, c.parts["assessor"], now=now)


async def snapshot(c: Container[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """The compared tables as sorted row lists, without the bookkeeping columns (see rebuild.COMPARED)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with c.engine.connect() as conn:
        for table, (keys, skipped) in COMPARED.items():
            columns = [
                r[0]
                for r in await conn.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                        "AND table_name = :t ORDER BY ordinal_position"
                    ),
                    {"t": table},
                )
                if r[0] not in skipped
            ]
            rows = await conn.execute(text(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(keys)}"))
            out[table] = [tuple(r) for r in rows]
    return out


async def raw_tables(c: Container[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every segmentation table, all columns (for "nothing changed at all")."""
    out = {}
    async with c.engine.connect() as conn:
        for table in (
            "customer_segments",
            "customer_orders",
            "customer_complaints",
            "customer_surveys",
            "segment_history",
            "churn_alerts",
            "alert_log",
            "outbox",
            "inbox",
        ):
            rows = await conn.execute(text(f"SELECT * FROM {table}"))
            out[table] = sorted(tuple(str(v) for v in r) for r in rows)
    return out


def diff(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """Per table: row counts and up to three rows only in one side (empty dict = equal)."""
    out: dict[str, Any] = {}
    for table in a.keys() | b.keys():
        ra, rb = a.get(table, []), b.get(table, [])
        if ra != rb:
            sa, sb = {repr(r) for r in ra}, {repr(r) for r in rb}  # rows may hold lists (JSON columns)
            out[table] = {
                "rows": (len(ra), len(rb)),
                "only_a": sorted(sa - sb, key=str)[:3],
                "only_b": sorted(sb - sa, key=str)[:3],
            }
    return out


async def assert_effects_once(c: Container[Any], names: Topics, group: str, expected_ids: set[str]) -> None:
    """The inbox holds each event id once (all of them), at most one live alert per customer, and no
    outgoing event twice by (event_type, causation_id, aggregate_version)."""
    async with c.engine.connect() as conn:
        inbox = [
            str(r[0])
            for r in await conn.execute(text("SELECT event_id FROM inbox WHERE consumer_group = :g"), {"g": group})
        ]
        live = (
            await conn.execute(
                text(
                    "SELECT customer_id, count(*) FROM churn_alerts WHERE state <> 'closed' GROUP BY customer_id HAVING count(*) > 1"
                )
            )
        ).all()
        values = [
            bytes(v)
            for (v,) in await conn.execute(text("SELECT value FROM outbox WHERE topic = :t"), {"t": names.segmentation})
        ]
        dead = await conn.scalar(text("SELECT count(*) FROM outbox WHERE topic = :t"), {"t": names.deadletter})
    assert len(inbox) == len(set(inbox)), "an event id is in the inbox twice"
    assert set(inbox) == expected_ids, (len(inbox), len(expected_ids))
    assert live == [], f"customers with more than one live alert: {live}"
    assert dead == 0, "no record of the stream may be dead-lettered"
    keys: Counter[tuple[str, str, int, str]] = Counter()
    for v in values:
        env = parse_envelope(v)
        keys[(env.event_type, str(env.causation_id), env.aggregate_version, env.customer_id)] += 1
    duplicated = [k for k, n in keys.items() if n > 1]
    assert not duplicated, f"outgoing events staged twice: {duplicated[:5]}"
