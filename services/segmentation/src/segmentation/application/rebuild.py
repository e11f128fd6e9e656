"""Rebuild the projection from the earliest offsets into fresh tables and compare it with the live one.

``python -m segmentation rebuild --clock <instant>``:

1. create a fresh schema ``rebuild_<stamp>`` with empty copies of the segmentation tables;
2. snapshot the live consumer's stored offsets (the point the live projection has reached) and read the
   recorded calibrations;
3. replay the three input topics from the earliest offset through the *same* consumer code
   (``ProjectionConsumer.process_records``: validation, inbox dedupe, projector, offsets) into that
   schema — phase by phase, graded at each decision's instant (the last phase at the live table's latest
   grade; never later than ``clock``): up to the offsets each recorded decision saw, then that
   decision is applied — a calibration with its recorded cut points and breakpoints, an operator's
   acknowledge / snooze / close of a churn alert as it was recorded in ``alert_log`` — and so on up to
   the live offsets;
4. assess every rebuilt customer once more — as of the instant its live row was last assessed at
   (``assessed_at``: the live sweep's, or the live clock's when its last event came), or at the fixed
   clock if the live table has not graded it — and compare per-table checksums with the live tables.

What is compared: the facts (``customer_orders``, ``customer_complaints``, ``customer_surveys``) and
``customer_segments`` without its bookkeeping columns (``updated_at``, ``first_seen_at`` — wall-clock
times —, ``assessed_at`` — the instant of the last assessment: the live one was the sweep's or a later
event's, the rebuilt one the fixed clock's, while the grades assessed are compared —, ``segmentation_version`` — how many events were published depends on batching —, ``alert_id``
and the random ``facts_token`` of the consumer's cache) and without the stream versions kept with the facts
(``*_version``, ``customer_orders.outstanding_amount``; see :data:`COMPARED`). Grades are a function of facts, the
recorded calibrations and the clock (docs/segmentation.md), so step 4 grades each rebuilt customer at
the instant of its live grades: a running service whose clock moves on (recency, activity, churn depend
on the instant) is compared like for like. State that depends on the path (a recalibration's hysteresis
starts from the tier graded before it; a snooze runs out; the lifecycle only advances) is why the replay's
clock follows the decisions' instants instead of ``clock``. What can still differ: a live row that the
service changes while the rebuild runs (run it again), and path-dependent state where live applied the
events of one phase at instants far apart. History rows and published
events record *when* things were noticed and how polls were batched; they are rebuilt but not compared.

Churn alerts are compared by their *standing* after the sweep (:func:`_compare_alerts`): per customer,
the live (not closed) alert's state and current score, or none. An alert's raise instant, raise score,
reasons and occurrences are not functions of the events: they record the assessment at which the score
first crossed the threshold, i.e. the clock of that poll and which intermediate states the batching
let the engine see. What the events and the clock do decide: a score at or above the raise threshold
has a live open alert, one below the clear threshold has none. So the comparison covers every customer
except (a) those whose score lies in the hysteresis band between the two (there a live alert exists
only if some earlier assessment saw the score high — path-dependent) and (b) those whose current alert
an operator acted on where the rebuild could not do the same: the action was recorded before its
offsets were (migration 0006), or at its point the rebuilt customer had no live alert in the state the
action was taken from (the alert itself was path-dependent). Both are counted in the report, never
silently dropped; replayed operator actions are counted too.
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

from segmentation.application.alerts import replay_alert_action
from segmentation.application.assessment import Assessor
from segmentation.application.projector import SegmentProjector
from segmentation.application.recalibration import regrade_all
from segmentation.application.sweep import reassess
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
#: The ``*_version`` columns (and an order's ``outstanding_amount``) record how the facts beside them were
#: reached, so that an older event arriving late leaves them alone (revision 0009): rows written before
#: that revision hold 0 / NULL where a rebuild holds the real versions, while the facts themselves are
#: compared.
COMPARED: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "customer_orders": (
        ("customer_id", "order_id"),
        frozenset({"credit_version", "outstanding_amount", "receivable_version"}),
    ),
    "customer_complaints": (("customer_id", "complaint_id"), frozenset({"status_version"})),
    "customer_surveys": (("customer_id", "survey_id"), frozenset()),
    "customer_segments": (
        ("customer_id",),
        frozenset(
            {
                "updated_at",
                "assessed_at",
                "segmentation_version",
                "alert_id",
                "first_seen_at",
                "facts_token",
                "company_name_version",
                "region_version",
                "deactivated_version",
            }
        ),
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
    #: Kafka records read and fed to the consumer code, redeliveries and invalid records included
    events_replayed: int
    calibrations_applied: int
    #: the compared tables, and last the alert standing (``ALERT_STANDING``)
    tables: list[TableComparison]
    #: customers whose alerts were left out of the comparison, by reason (see the module docstring)
    alerts_not_compared: dict[str, int] = field(default_factory=dict)
    #: operator actions on churn alerts applied again at their recorded offsets
    operator_actions_replayed: int = 0
    #: distinct events applied (the rebuilt inbox), and records dead-lettered (invalid, or the handler failed)
    events_applied: int = 0
    dead_lettered: int = 0

    @property
    def duplicates(self) -> int:
        """Records read whose event had been applied already (a redelivery that is on the topic twice)."""
        return self.events_replayed - self.events_applied - self.dead_lettered

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
        # every event the live consumer applied was graded at its instant: none later than the latest grade
        latest_live_grade = await conn.scalar(text("SELECT max(assessed_at) FROM customer_segments"))
        if not targets:
            log.warning(
                "segmentation.rebuild_nothing_to_replay",
                group=group_id,
                detail="the live consumer has stored no offsets for this group: the rebuild replays up to "
                "where the live projection stands, which is nowhere yet",
            )
        recorded = [dict(r._mapping) for r in await conn.execute(text("SELECT * FROM calibrations ORDER BY id"))]
        actions = [
            dict(r._mapping)
            for r in await conn.execute(
                text("SELECT * FROM alert_log WHERE actor IS NOT NULL AND consumer_offsets IS NOT NULL ORDER BY id")
            )
        ]
    fresh = create_async_engine(
        to_asyncpg_url(database_url), connect_args={"server_settings": {"search_path": f"{schema},public"}}
    )
    # The instant the replay grades at: up to each recorded decision, the decision's own instant; after the
    # last one, the live table's latest grade — never later than ``clock``, and only forward. So
    # path-dependent grades (the tier a recalibration's hysteresis starts from, an alert snoozed until a
    # time, a lifecycle stage that only advances) see about what the live service saw when it applied them.
    replay_clock = _ReplayClock()
    try:
        replayer = ProjectionConsumer(
            fresh,
            # The replayer is the only writer of the fresh tables: with room for every customer's facts
            # it never reloads a customer's fact rows (a cache smaller than the customers seen made every
            # miss re-read that customer's whole history, so the replay slowed down as history grew).
            SegmentProjector(
                topic="rebuild.discarded", policy=assessor.policy, clock=replay_clock, cache_size=cache_size
            ),
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            topics=topics,
            deadletter_topic=deadletter_topic,
        )
        reader = _Reader(bootstrap_servers, list(targets))
        await reader.start()
        replayed = 0
        replayed_actions: list[int] = []
        try:
            for point in _decision_points(recorded, actions, group_id, targets):
                # the live consumer applied what came before a decision before the decision's instant
                earlier = replay_clock.now
                replay_clock.now = min(clock, point.at if earlier is None else max(earlier, point.at))
                replayed += await reader.replay_until(point.offsets, replayer, batch_size)
                if point.calibration is not None:
                    await _apply_recorded_calibration(fresh, assessor, point.calibration, first=point.first)
                elif await _replay_action(fresh, assessor, point.action):
                    replayed_actions.append(point.action["id"])
            final = clock if latest_live_grade is None else min(clock, latest_live_grade)
            replay_clock.now = final if replay_clock.now is None else max(replay_clock.now, final)
            replayed += await reader.replay_until(targets, replayer, batch_size)
        finally:
            await reader.stop()
            await replayer.consumer.stop()  # created by the constructor, never started: release it
        await _assess_as_graded_live(live, fresh, assessor, schema, clock)
        async with live.connect() as conn:
            tables = [await _compare_table(conn, schema, table) for table in COMPARED]
        async with live.begin() as conn:
            alerts, not_compared = await _compare_alerts(conn, schema, assessor, replayed_actions)
            applied, dead = await _replay_counts(conn, schema, group_id, deadletter_topic)
        tables.append(alerts)
    finally:
        await fresh.dispose()
    if not keep:
        async with live.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    report = RebuildReport(
        schema, clock, replayed, len(recorded), tables, not_compared, len(replayed_actions), applied, dead
    )
    log.info(
        "segmentation.rebuilt",
        schema=schema,
        kept=keep,
        events=replayed,
        events_applied=applied,
        duplicates=report.duplicates,
        identical=report.identical,
        alerts_not_compared=not_compared,
        operator_actions_replayed=len(replayed_actions),
    )
    return report


async def _assess_as_graded_live(
    live: AsyncEngine, fresh: AsyncEngine, assessor: Assessor, schema: str, clock: datetime
) -> None:
    """Assess every rebuilt customer as of the instant its live row was last assessed at, and those the live
    table has not graded at ``clock`` (customers of one instant together, a chunk per transaction)."""
    async with live.connect() as conn:
        rows = await conn.execute(
            text(
                f"SELECT l.assessed_at, r.customer_id FROM {schema}.customer_segments r "
                "LEFT JOIN public.customer_segments l USING (customer_id) "
                "ORDER BY l.assessed_at NULLS LAST, r.customer_id"
            )
        )
        graded = [(at, customer_id) for at, customer_id in rows]
    await reassess(fresh, assessor, [(at or clock, customer_id) for at, customer_id in graded])
    log.info(
        "segmentation.rebuild_assessed_as_live",
        instants=len({at for at, _ in graded}),
        customers=len(graded),
        at_the_clock=sum(1 for at, _ in graded if at is None),
    )


async def _replay_counts(conn: Any, schema: str, group_id: str, deadletter_topic: str) -> tuple[int, int]:
    """Distinct events the replay applied (its inbox) and records it dead-lettered (its outbox)."""
    applied = await conn.scalar(text(f"SELECT count(*) FROM {schema}.inbox WHERE consumer_group = :g"), {"g": group_id})
    dead = await conn.scalar(text(f"SELECT count(*) FROM {schema}.outbox WHERE topic = :t"), {"t": deadletter_topic})
    return int(applied), int(dead)


class _ReplayClock:
    def __init__(self) -> None:
        self.now: datetime | None = None

    def __call__(self) -> datetime:
        assert self.now is not None, "set before the first replayed batch"
        return self.now


@dataclass(frozen=True)
class _DecisionPoint:
    """A recorded decision that is not a function of the events, and where the input streams stood when it
    was taken: a calibration (``first``: the first with a population, graded without hysteresis) or an
    operator's action on a churn alert (its ``alert_log`` row)."""

    offsets: dict[TopicPartition, int]
    at: datetime  # when it was taken, by the service clock
    calibration: dict[str, Any] | None = None
    first: bool = False
    action: dict[str, Any] = field(default_factory=dict)


def _decision_points(
    calibrations: list[dict[str, Any]], actions: list[dict[str, Any]], group_id: str, live: dict[TopicPartition, int]
) -> list[_DecisionPoint]:
    """Calibrations and operator actions in the order they were taken.

    Stored offsets only go up, so of two decisions the later one saw at least the offsets of the earlier
    one on every partition: the order by the sum of offsets is the order they were taken in. Decisions
    with no event between them are ordered by the service clock (a calibration's ``effective_at``, an
    action's ``at``), a calibration first at the same instant."""
    points: list[tuple[tuple[int, datetime, int, int], _DecisionPoint]] = []
    for index, row in enumerate(calibrations):
        first = index == 0 or calibrations[index - 1]["population"] == 0  # as recalibrate() decides
        offsets = _offsets_seen(row["consumer_offsets"], group_id, live)
        key = (sum(offsets.values()), row["effective_at"], 0, row["id"])
        points.append((key, _DecisionPoint(offsets, row["effective_at"], calibration=row, first=first)))
    for row in actions:
        offsets = _offsets_seen(row["consumer_offsets"], group_id, live)
        points.append(
            ((sum(offsets.values()), row["at"], 1, row["id"]), _DecisionPoint(offsets, row["at"], action=row))
        )
    return [point for _, point in sorted(points, key=lambda p: p[0])]


async def _replay_action(db: AsyncEngine, assessor: Assessor, logged: dict[str, Any]) -> bool:
    async with db.begin() as conn:
        return await replay_alert_action(
            conn, topic="rebuild.discarded", bands=assessor.policy.churn.bands, logged=logged
        )


def _offsets_seen(
    recorded: list[dict[str, Any]], group_id: str, live: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Where the live consumer stood when a decision was recorded, for every partition replayed.

    A partition without a stored offset then had not been read at all: its limit is 0, not "whatever the
    replay has fetched so far" (which applied records the live calibration had not seen)."""
    seen = {
        TopicPartition(o["topic"], o["partition"]): o["next_offset"]
        for o in recorded
        if o.get("consumer_group", group_id) == group_id
    }
    return {tp: seen.get(tp, 0) for tp in live.keys() | seen.keys()}


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


async def _compare_table(conn: Any, schema: str, table: str) -> TableComparison:
    """A table of :data:`COMPARED`, live vs rebuilt, without the columns it leaves out."""
    keys, skipped = COMPARED[table]
    listed = await conn.execute(
        text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = :t ORDER BY ordinal_position"
        ),
        {"t": table},
    )
    columns = ", ".join(r[0] for r in listed if r[0] not in skipped)
    return await _compare(
        conn,
        table,
        live=f"SELECT {columns} FROM public.{table}",
        rebuilt=f"SELECT {columns} FROM {schema}.{table}",
        columns=columns,
        keys=", ".join(keys),
    )


async def _compare(
    conn: Any, name: str, *, live: str, rebuilt: str, columns: str, keys: str, order: str = ""
) -> TableComparison:
    """Compare two queries returning the same ``columns``: row counts and an md5 of their rows in ``order``
    (default ``keys``); when they differ, the first ten distinct ``keys`` of rows found on one side only
    (each row counted as often as it occurs, so a duplicated row shows too)."""
    row = f"md5(ROW({columns})::text)"

    async def checksum(source: str) -> tuple[int, str]:
        result = await conn.execute(
            text(
                f"SELECT count(*), md5(coalesce(string_agg({row}, '' ORDER BY {order or keys}), '')) FROM ({source}) s"
            )
        )
        count, digest = result.one()
        return int(count), str(digest)

    live_rows, live_sum = await checksum(live)
    rebuilt_rows, rebuilt_sum = await checksum(rebuilt)
    differing: list[str] = []
    if (live_rows, live_sum) != (rebuilt_rows, rebuilt_sum):
        sample = await conn.execute(
            text(
                f"SELECT DISTINCT {keys} FROM (({live} EXCEPT ALL {rebuilt}) UNION ALL "
                f"({rebuilt} EXCEPT ALL {live})) d ORDER BY {keys} LIMIT 10"
            )
        )
        differing = ["/".join(str(v) for v in r) for r in sample]
    return TableComparison(name, live_rows, rebuilt_rows, live_sum, rebuilt_sum, differing)


#: Name of the alert comparison in :attr:`RebuildReport.tables`.
ALERT_STANDING = "churn_alerts (standing)"


async def _compare_alerts(
    conn: Any, schema: str, assessor: Assessor, replayed_actions: list[int]
) -> tuple[TableComparison, dict[str, int]]:
    """Per compared customer, the live alert's state and current score (or none), live vs rebuilt.

    Compared customers: everyone in either table whose live score (the rebuilt one if only rebuilt) is
    outside the hysteresis band [clear, raise), and whose current live alert has no operator action that
    the rebuild did not replay (``replayed_actions``: their ``alert_log`` ids). A duplicated live alert
    shows as a second row of its customer."""
    policy = assessor.policy.churn
    await conn.execute(
        text(
            "CREATE TEMPORARY TABLE alert_standing_keys ON COMMIT DROP AS "
            "SELECT customer_id, coalesce(l.churn_score, r.churn_score) AS score, l.alert_id AS live_alert "
            f"FROM public.customer_segments l FULL JOIN {schema}.customer_segments r USING (customer_id)"
        )
    )
    bounds = {"clear": policy.alert_clear_below, "raise": policy.alert_raise_at}
    in_band = await conn.execute(
        text("DELETE FROM alert_standing_keys WHERE score >= :clear AND score < :raise"), bounds
    )
    handled = await conn.execute(
        text(
            "DELETE FROM alert_standing_keys k WHERE EXISTS (SELECT 1 FROM public.alert_log g "
            "WHERE g.alert_id = k.live_alert AND g.actor IS NOT NULL AND NOT g.id = ANY(:replayed))"
        ),
        {"replayed": replayed_actions},
    )
    not_compared = {"in_hysteresis_band": in_band.rowcount, "with_an_operator_action_not_replayed": handled.rowcount}

    def standing(side: str) -> str:
        return (
            "SELECT k.customer_id, a.state, a.last_score FROM alert_standing_keys k "
            f"LEFT JOIN {side}.churn_alerts a ON a.customer_id = k.customer_id AND a.state <> 'closed'"
        )

    comparison = await _compare(
        conn,
        ALERT_STANDING,
        live=standing("public"),
        rebuilt=standing(schema),
        columns="customer_id, state, last_score",
        keys="customer_id",
        order="customer_id, state, last_score",
    )
    return comparison, not_compared
