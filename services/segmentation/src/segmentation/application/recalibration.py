"""Recalibration: new percentile cut points and RFM breakpoints, recorded, then everyone re-graded.

Two steps, so that consumers wait only for the second:

1. **Measure, from a snapshot, without the engine lock** (one ``REPEATABLE READ`` transaction): every
   customer's measures as of ``as_of`` (pure, chunked), the cut points over the trailing-window nets of
   customers with live orders (``cutpoints.compute_cut_points``) and the RFM breakpoints over the same
   population (``rfm.compute_breakpoints``). The snapshot sees whole consumer transactions only (facts
   and offsets commit together), so the consumer offsets read in it are exactly the input measured; they
   are recorded as ``measured_offsets``. The facts read are kept (by ``facts_token``, up to
   :data:`SNAPSHOT_FACTS_LIMIT` customers) for step 2.
2. **Record and re-grade, under the engine lock taken exclusively** (one transaction; consumers take it
   shared per poll): if another calibration was recorded since the snapshot, measure again under the
   lock (the old way, and "due" is decided again); record the calibration (``calibrations``:
   effective_at, cut points, breakpoints, policy version, and the consumer offsets *now*); re-grade every
   customer with hysteresis at recalibration — facts unchanged since the snapshot (same token) come
   from step 1, the others from the tables —, writing history rows and staging CustomerTierChanged /
   CustomerRfmSegmentChanged (and any activity / churn change) in the outbox.

The invariant a rebuild relies on is the one step 2 keeps: the re-grade sees every committed poll and
none in flight, so the ``consumer_offsets`` recorded with a calibration are exactly the facts it graded
— a rebuild replays up to them, applies the recorded numbers (never recomputed) and goes on. Where the
numbers came from (``measured_offsets``, at or before ``consumer_offsets``) is provenance, not an input
of the replay.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from segmentation.application.assessment import Assessor, Trigger
from segmentation.application.metrics import count_raised_alerts
from segmentation.domain import cutpoints, rfm
from segmentation.domain.cutpoints import CutPoints
from segmentation.domain.grading import Calibration, rfm_observation
from segmentation.domain.measures import measure
from segmentation.domain.rfm import RfmBreakpoints, RfmObservation
from segmentation.projections import calibrations as store_calibrations
from segmentation.projections.facts_cache import FactsCache
from segmentation.projections.store import LOCK_EXCLUSIVE, Changes, all_customer_ids, load_records, save
from shared.logging import get_logger
from shared.messaging.outbox import OutboxMessage, write_outbox

log = get_logger(__name__)

CHUNK = 2000
#: Customers whose snapshot facts are kept for the re-grade (beyond it, facts are read again under the
#: lock: slower, same result). Bounds the recalibration's memory like the consumer's facts cache.
SNAPSHOT_FACTS_LIMIT = 50_000


@dataclass(frozen=True)
class CalibrationResult:
    calibration_id: int
    effective_at: datetime
    population: int
    customers_graded: int
    tier_changes: int
    segment_changes: int
    cut_points: dict[str, str]
    rfm_breakpoints: dict[str, list[str]] | None


@dataclass
class _Measured:
    """What step 1 found: the numbers, the input they came from, and the facts read."""

    latest_id: int | None  # the calibration in force when measured
    cut_points: CutPoints
    breakpoints: RfmBreakpoints | None
    population: int
    offsets: list[dict[str, Any]]
    facts: FactsCache


async def recalibrate(
    db: AsyncEngine, assessor: Assessor, *, as_of: datetime, trigger: str, only_if_due: bool = False
) -> CalibrationResult | None:
    """Recalibrate as of ``as_of``; with ``only_if_due``, skip (None) unless the schedule says it is due."""
    started = time.perf_counter()
    async with db.connect() as snapshot:
        await snapshot.execution_options(isolation_level="REPEATABLE READ")
        async with snapshot.begin():
            in_force = await store_calibrations.latest_calibration(snapshot, assessor.policy)
            if only_if_due and not await recalibration_due(snapshot, assessor, as_of):
                return None
            measured = await _measure(snapshot, assessor, as_of, in_force.id)
    measured_s = time.perf_counter() - started
    staged: list[OutboxMessage] = []  # what the re-grade sends; its raised alerts are counted once committed
    with long_lived_objects_frozen():
        async with db.begin() as conn:
            await conn.execute(LOCK_EXCLUSIVE)
            locked = time.perf_counter()
            previous = await store_calibrations.latest_calibration(conn, assessor.policy)
            if previous.id != measured.latest_id:  # another recalibration landed since the snapshot
                if only_if_due and not await recalibration_due(conn, assessor, as_of):
                    return None
                measured = await _measure(conn, assessor, as_of, previous.id)
            result = await _record_and_regrade(conn, assessor, as_of, trigger, measured, previous, staged)
    count_raised_alerts(staged, path="recalibration")
    log.info(
        "segmentation.recalibration_timing",
        calibration_id=result.calibration_id,
        measured_s=round(measured_s, 3),
        exclusive_s=round(time.perf_counter() - locked, 3),
    )
    return result


class _CollectorFreeze:
    """``gc.freeze()`` for as long as any holder needs it: the process-wide freeze is counted, so of two
    overlapping holders (two recalibrations in one process) the first to finish does not unfreeze the
    objects the other still relies on; the last one out unfreezes.

    Each entry freezes again, so a later holder also gets what exists when it starts frozen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            self._holders += 1
            gc.freeze()
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    gc.unfreeze()


_collector_freeze = _CollectorFreeze()


def long_lived_objects_frozen() -> contextlib.AbstractContextManager[None]:
    """Keep the collector off what exists already (the snapshot's facts, the process's caches) while the
    exclusive section runs: the re-grade allocates a lot, and each full collection would otherwise walk
    every fact object held — measured at about a third of the exclusive time on the Online Retail set.
    Objects are handed back to the collector when the last overlapping holder leaves (nothing is leaked)."""
    return _collector_freeze.held()


async def recalibration_due(conn: AsyncConnection, assessor: Assessor, now: datetime) -> bool:
    """Due ``recalibration_interval_days`` after the last calibration — or, before the first, after the
    first customer was seen (so a new installation grades on absolute stand-ins for one interval)."""
    interval = timedelta(days=assessor.policy.tier.recalibration_interval_days)
    latest = await store_calibrations.latest_calibration(conn, assessor.policy)
    since = (
        latest.effective_at
        if latest.effective_at is not None
        else await store_calibrations.oldest_customer_seen_at(conn)
    )
    return since is not None and now >= since + interval


async def _measure(conn: AsyncConnection, assessor: Assessor, as_of: datetime, latest_id: int | None) -> _Measured:
    """Measure everyone as of ``as_of`` in ``conn``'s view; the numbers, the offsets of that view, the facts."""
    policy = assessor.policy
    offsets = await store_calibrations.consumer_offsets(conn)
    ids = await all_customer_ids(conn)
    facts = FactsCache(SNAPSHOT_FACTS_LIMIT)
    nets: list[Decimal] = []
    observations: list[RfmObservation] = []
    for start in range(0, len(ids), CHUNK):
        records = await load_records(conn, ids[start : start + CHUNK], lock=False)
        for record in records.values():
            m = measure(record.facts, as_of, policy)
            observation = rfm_observation(m)
            if observation is not None:
                nets.append(m.window_net)
                observations.append(observation)
            if record.facts_token is not None:
                facts.put(record.customer_id, record.facts_token, record.facts)
    return _Measured(
        latest_id=latest_id,
        cut_points=cutpoints.compute_cut_points(nets, policy.tier),
        breakpoints=rfm.compute_breakpoints(observations) if observations else None,
        population=len(nets),
        offsets=offsets,
        facts=facts,
    )


async def _record_and_regrade(
    conn: AsyncConnection,
    assessor: Assessor,
    as_of: datetime,
    trigger: str,
    measured: _Measured,
    previous: Calibration,
    staged: list[OutboxMessage],
) -> CalibrationResult:
    """Under the exclusive lock: record the calibration at the offsets now, re-grade everyone."""
    policy = assessor.policy
    ids = await all_customer_ids(conn)
    calibration_id = await store_calibrations.record_calibration(
        conn,
        effective_at=as_of,
        trigger=trigger,
        cut_points=measured.cut_points,
        breakpoints=measured.breakpoints,
        policy=policy,
        consumer_offsets=await store_calibrations.consumer_offsets(conn),
        measured_offsets=measured.offsets,
    )
    calibration = Calibration(calibration_id, as_of, measured.cut_points, measured.breakpoints, policy.version)
    tier_changes, segment_changes = await regrade_all(
        conn,
        assessor,
        calibration,
        ids,
        first_recalibration=previous.id is None or previous.cut_points.population == 0,
        facts=measured.facts,
        staged=staged,
    )
    await store_calibrations.finish_calibration(conn, calibration_id, len(ids), tier_changes)
    log.info(
        "segmentation.recalibrated",
        calibration_id=calibration_id,
        effective_at=as_of.isoformat(),
        population=measured.population,
        tier_changes=tier_changes,
        segment_changes=segment_changes,
    )
    return CalibrationResult(
        calibration_id=calibration_id,
        effective_at=as_of,
        population=measured.population,
        customers_graded=len(ids),
        tier_changes=tier_changes,
        segment_changes=segment_changes,
        cut_points={str(k): v for k, v in measured.cut_points.as_dict().items()},
        rfm_breakpoints=None if measured.breakpoints is None else measured.breakpoints.as_dict(),
    )


async def regrade_all(
    conn: AsyncConnection,
    assessor: Assessor,
    calibration: Calibration,
    ids: list[str],
    *,
    first_recalibration: bool,
    facts: FactsCache | None = None,
    staged: list[OutboxMessage] | None = None,
) -> tuple[int, int]:
    """Re-grade ``ids`` at ``calibration`` (as of its effective instant); (tier changes, segment changes).

    ``facts``: customers' facts already read, used where the row's ``facts_token`` still matches;
    ``staged`` collects the messages written to the outbox."""
    assert calibration.id is not None and calibration.effective_at is not None
    trigger = Trigger(f"recalibration #{calibration.id}", f"calibration-{calibration.id}")
    tier_changes = segment_changes = 0
    for start in range(0, len(ids), CHUNK):
        records = await load_records(conn, ids[start : start + CHUNK], lock=True, cache=facts)
        changes = Changes()
        messages: list[OutboxMessage] = []
        for record in records.values():
            grades = assessor.assess(
                record,
                calibration,
                calibration.effective_at,
                trigger,
                changes,
                messages,
                at_recalibration=True,
                first_recalibration=first_recalibration,
            )
            tier_changes += grades.tier != record.published.tier
            segment_changes += grades.segment != record.published.segment
        await save(conn, changes)
        await write_outbox(conn, messages)
        if staged is not None:
            staged.extend(messages)
    return tier_changes, segment_changes
