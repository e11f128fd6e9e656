"""Recalibration: new percentile cut points and RFM breakpoints, recorded, then everyone re-graded.

One transaction under the engine lock taken *exclusively*, so no consumer batch is in flight and the
consumer offsets recorded with the calibration are exactly the input it was computed from (a rebuild
replays up to those offsets, applies the recorded calibration, and goes on):

1. measure every customer as of ``as_of`` (pure) — chunked, so memory stays bounded;
2. cut points over the trailing-window nets of customers with live orders (``cutpoints.compute_cut_points``)
   and RFM breakpoints over the same population (``rfm.compute_breakpoints``);
3. record the calibration (``calibrations``: effective_at, cut points, breakpoints, policy version,
   offsets);
4. re-grade every customer with hysteresis at recalibration, writing history rows and staging
   CustomerTierChanged / CustomerRfmSegmentChanged (and any activity / churn change) in the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from segmentation.application.assessment import Assessor, Trigger
from segmentation.domain import cutpoints, rfm
from segmentation.domain.grading import Calibration, rfm_observation
from segmentation.domain.measures import measure
from segmentation.domain.rfm import RfmObservation
from segmentation.projections import calibrations as store_calibrations
from segmentation.projections.store import LOCK_EXCLUSIVE, Changes, all_customer_ids, load_records, save
from shared.logging import get_logger
from shared.messaging.outbox import OutboxMessage, write_outbox

log = get_logger(__name__)

CHUNK = 2000


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


async def recalibrate(
    db: AsyncEngine, assessor: Assessor, *, as_of: datetime, trigger: str, only_if_due: bool = False
) -> CalibrationResult | None:
    """Recalibrate as of ``as_of``; with ``only_if_due``, skip (None) unless the schedule says it is due."""
    async with db.begin() as conn:
        await conn.execute(LOCK_EXCLUSIVE)
        if only_if_due and not await recalibration_due(conn, assessor, as_of):
            return None
        return await _recalibrate(conn, assessor, as_of, trigger)


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


async def _recalibrate(conn: AsyncConnection, assessor: Assessor, as_of: datetime, trigger: str) -> CalibrationResult:
    policy = assessor.policy
    ids = await all_customer_ids(conn)
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
    cut_points = cutpoints.compute_cut_points(nets, policy.tier)
    breakpoints = rfm.compute_breakpoints(observations) if observations else None
    previous = await store_calibrations.latest_calibration(conn, policy)
    calibration_id = await store_calibrations.record_calibration(
        conn,
        effective_at=as_of,
        trigger=trigger,
        cut_points=cut_points,
        breakpoints=breakpoints,
        policy=policy,
        consumer_offsets=await store_calibrations.consumer_offsets(conn),
    )
    calibration = Calibration(calibration_id, as_of, cut_points, breakpoints, policy.version)
    tier_changes, segment_changes = await regrade_all(
        conn, assessor, calibration, ids, first_recalibration=previous.id is None or previous.cut_points.population == 0
    )
    await store_calibrations.finish_calibration(conn, calibration_id, len(ids), tier_changes)
    log.info(
        "segmentation.recalibrated",
        calibration_id=calibration_id,
        effective_at=as_of.isoformat(),
        population=len(nets),
        tier_changes=tier_changes,
        segment_changes=segment_changes,
    )
    return CalibrationResult(
        calibration_id=calibration_id,
        effective_at=as_of,
        population=len(nets),
        customers_graded=len(ids),
        tier_changes=tier_changes,
        segment_changes=segment_changes,
        cut_points={str(k): v for k, v in cut_points.as_dict().items()},
        rfm_breakpoints=None if breakpoints is None else breakpoints.as_dict(),
    )


async def regrade_all(
    conn: AsyncConnection,
    assessor: Assessor,
    calibration: Calibration,
    ids: list[str],
    *,
    first_recalibration: bool,
) -> tuple[int, int]:
    """Re-grade ``ids`` at ``calibration`` (as of its effective instant); (tier changes, segment changes)."""
    assert calibration.id is not None and calibration.effective_at is not None
    trigger = Trigger(f"recalibration #{calibration.id}", f"calibration-{calibration.id}")
    tier_changes = segment_changes = 0
    for start in range(0, len(ids), CHUNK):
        records = await load_records(conn, ids[start : start + CHUNK], lock=True)
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
    return tier_changes, segment_changes
