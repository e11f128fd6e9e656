"""Rebuild the projection from the earliest offsets into fresh tables and compare it with the live one.

``python -m segmentation rebuild --clock <instant>``:

1. create a fresh schema ``rebuild_<stamp>`` with empty copies of the segmentation tables;
2. snapshot the live consumer's stored offsets (the point the live projection has reached) and read the
   recorded calibrations;
3. replay the three input topics from the earliest offset through the *same* consumer code
   (``ProjectionConsumer.process_records``: validation, inbox dedupe, projector, offsets) into that
   schema, with a fixed clock — phase by phase: up to the offsets each recorded calibration saw, then
   that calibration is applied with its recorded cut points and breakpoints, and so on up to the live
   offsets;
4. run one sweep at the fixed clock, and compare per-table checksums with the live tables.

What is compared: the facts (``customer_orders``, ``customer_complaints``, ``customer_surveys``) and
``customer_segments`` without its bookkeeping columns (``updated_at``, ``first_seen_at`` — wall-clock
times —, ``segmentation_version`` — how many events were published depends on batching —, ``alert_id``
and the random ``facts_token`` of the consumer's cache). Grades are a function of facts, the
recorded calibrations and the clock (docs/segmentation.md), so the live table matches when it was last
assessed at the same clock (run the live sweep at that instant, or give the rebuild the instant of the
live sweep). History rows, published events and alerts record *when* things were noticed and how polls
were batched; they are rebuilt but not compared.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from segmentation.application.assessment import Assessor
from segmentation.application.projector import SegmentProjector
from segmentation.application.recalibration import regrade_all
from segmentation.application.sweep import sweep
from segmentation.projections.calibrations import calibration_from_row
from segmentation.projections.store import LOCK_EXCLUSIVE, all_customer_ids
from shared.db.engine import to_asyncpg_url
from shared.logging import get_logger
from shared.messaging.consumer import ProjectionConsumer

log = get_logger(__name__)

#: Tables copied into the rebuild schema (LIKE … INCLUDING ALL).
TABLES = (
    "customer_segments",
    "customer_orders",
    "customer_complaints",
    "customer_surveys",
    "calibrations",
    "segment_history",
    "churn_alerts",
    "alert_log",
    "inbox",
    "consumer_offsets",
    "outbox",
)
#: Compared tables → (key columns, columns left out of the comparison).
COMPARED: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "customer_orders": (("customer_id", "order_id"), frozenset()),
    "customer_complaints": (("customer_id", "complaint_id"), frozenset()),
    "customer_surveys": (("customer_id", "survey_id"), frozenset()),
    "customer_segments": (
        ("customer_id",),
        frozenset({"updated_at", "segmentation_version", "alert_id", "first_seen_at", "facts_token"}),
    ),
}


@dataclass
class TableComparison:
    table: str
    live_rows: int
    rebuilt_rows: int
    live_checksum: str
    rebuilt_checksum: str
    differing_keys: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.live_checksum == self.rebuilt_checksum and self.live_rows == self.rebuilt_rows


@dataclass
class RebuildReport:
    schema: str
    clock: datetime
    events_replayed: int
    calibrations_applied: int
    tables: list[TableComparison]

    @property
    def identical(self) -> bool:
        return all(t.equal for t in self.tables)


async def rebuild(
    live: AsyncEngine,
    database_url: str,
    assessor: Assessor,
    *,
    clock: datetime,
    bootstrap_servers: str,
    group_id: str,
    topics: list[str],
    deadletter_topic: str,
    schema: str | None = None,
    keep: bool = True,
    batch_size: int = 2000,
    cache_size: int = 250_000,
) -> RebuildReport:
    schema = schema or f"rebuild_{datetime.now(UTC):%Y%m%d%H%M%S}"
    async with live.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
        for table in TABLES:
            await conn.execute(text(f"CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"))
        stored = await conn.execute(
            text("SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = :g"),
            {"g": group_id},
        )
        targets = {TopicPartition(r.topic, r.partition): r.next_offset for r in stored}
        if not targets:
            log.warning(
                "segmentation.rebuild_nothing_to_replay",
                group=group_id,
                detail="the live consumer has stored no offsets for this group: the rebuild replays up to "
                "where the live projection stands, which is nowhere yet",
            )
        recorded = [dict(r._mapping) for r in await conn.execute(text("SELECT * FROM calibrations ORDER BY id"))]
    fresh = create_async_engine(
        to_asyncpg_url(database_url), connect_args={"server_settings": {"search_path": f"{schema},public"}}
    )
    try:
        replayer = ProjectionConsumer(
            fresh,
            # The replayer is the only writer of the fresh tables: with room for every customer's facts
            # it never reloads a customer's fact rows (a cache smaller than the customers seen made every
            # miss re-read that customer's whole history, so the replay slowed down as history grew).
            SegmentProjector(
                topic="rebuild.discarded", policy=assessor.policy, clock=lambda: clock, cache_size=cache_size
            ),
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            topics=topics,
            deadletter_topic=deadletter_topic,
        )
        reader = _Reader(bootstrap_servers, list(targets))
        await reader.start()
        replayed = 0
        try:
            for index, row in enumerate(recorded):
                seen = {TopicPartition(o["topic"], o["partition"]): o["next_offset"] for o in row["consumer_offsets"]}
                replayed += await reader.replay_until(seen, replayer, batch_size)
                first = index == 0 or recorded[index - 1]["population"] == 0  # as recalibrate() decides
                await _apply_recorded_calibration(fresh, assessor, row, first=first)
            replayed += await reader.replay_until(targets, replayer, batch_size)
        finally:
            await reader.stop()
            await replayer.consumer.stop()  # created by the constructor, never started: release it
        await sweep(fresh, assessor, now=clock)
        async with live.connect() as conn:
            tables = [await _compare(conn, schema, table) for table in COMPARED]
    finally:
        await fresh.dispose()
    if not keep:
        async with live.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    report = RebuildReport(schema, clock, replayed, len(recorded), tables)
    log.info("segmentation.rebuilt", schema=schema, events=replayed, identical=report.identical)
    return report


async def _apply_recorded_calibration(db: AsyncEngine, assessor: Assessor, row: dict[str, Any], *, first: bool) -> None:
    """Insert the recorded calibration with its id and apply its frozen numbers (not recomputed)."""
    columns = [c for c in row if c != "id"]
    async with db.begin() as conn:
        await conn.execute(LOCK_EXCLUSIVE)
        await conn.execute(
            text(
                f"INSERT INTO calibrations (id, {', '.join(columns)}) OVERRIDING SYSTEM VALUE "
                f"SELECT id, {', '.join(columns)} FROM public.calibrations WHERE id = :id"
            ),
            {"id": row["id"]},
        )
        ids = await all_customer_ids(conn)
        await regrade_all(conn, assessor, calibration_from_row(row), ids, first_recalibration=first)


class _Reader:
    """Reads assigned partitions from the earliest offset, phase by phase up to given offsets."""

    def __init__(self, bootstrap_servers: str, partitions: list[TopicPartition]) -> None:
        self.partitions = partitions
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_poll_records=2000,
        )
        self.position: dict[TopicPartition, int] = dict.fromkeys(partitions, 0)
        self.held: dict[TopicPartition, deque[ConsumerRecord]] = {tp: deque() for tp in partitions}

    async def start(self) -> None:
        await self.consumer.start()
        if self.partitions:
            self.consumer.assign(self.partitions)
            await self.consumer.seek_to_beginning(*self.partitions)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def replay_until(
        self, targets: dict[TopicPartition, int], replayer: ProjectionConsumer, batch_size: int
    ) -> int:
        """Apply every record below ``targets`` (per partition) not applied yet; records beyond wait."""
        applied = 0
        pending: list[ConsumerRecord] = []
        while True:
            for tp, held in self.held.items():
                limit = targets.get(tp, self.position[tp])
                while held and held[0].offset < limit:
                    pending.append(held.popleft())
            if len(pending) >= batch_size or (pending and self._caught_up(targets)):
                await replayer.process_records(pending)
                applied += len(pending)
                pending = []
            if self._caught_up(targets) and not pending:
                return applied
            batch = await self.consumer.getmany(timeout_ms=500, max_records=batch_size)
            for tp, records in batch.items():
                self.held.setdefault(tp, deque()).extend(records)
                if records:
                    self.position[tp] = records[-1].offset + 1
            if not batch:
                await asyncio.sleep(0)

    def _caught_up(self, targets: dict[TopicPartition, int]) -> bool:
        return all(
            self.position.get(tp, 0) >= offset and not (self.held.get(tp) and self.held[tp][0].offset < offset)
            for tp, offset in targets.items()
        )


async def _compare(conn: Any, schema: str, table: str) -> TableComparison:
    keys, skipped = COMPARED[table]
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
    row = f"md5(ROW({', '.join(columns)})::text)"
    order = ", ".join(keys)

    async def checksum(where: str) -> tuple[int, str]:
        result = await conn.execute(
            text(f"SELECT count(*), md5(coalesce(string_agg({row}, '' ORDER BY {order}), '')) FROM {where}.{table}")
        )
        count, digest = result.one()
        return int(count), str(digest)

    live_rows, live_sum = await checksum("public")
    rebuilt_rows, rebuilt_sum = await checksum(schema)
    differing: list[str] = []
    if (live_rows, live_sum) != (rebuilt_rows, rebuilt_sum):
        cols = ", ".join(columns)
        sample = await conn.execute(
            text(
                f"SELECT {order} FROM ((SELECT {cols} FROM public.{table} EXCEPT SELECT {cols} FROM {schema}.{table}) "
                f"UNION ALL (SELECT {cols} FROM {schema}.{table} EXCEPT SELECT {cols} FROM public.{table})) d "
                f"ORDER BY {order} LIMIT 10"
            )
        )
        differing = ["/".join(str(v) for v in r) for r in sample]
    return TableComparison(table, live_rows, rebuilt_rows, live_sum, rebuilt_sum, differing)
