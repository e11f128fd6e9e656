"""Recorded recalibrations: the frozen cut points and RFM breakpoints, and when they took effect."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentation.domain.cutpoints import CutPoints
from segmentation.domain.grading import Calibration
from segmentation.domain.policy import Policy, TierMode
from segmentation.domain.rfm import RfmBreakpoints
from segmentation.projections.read_model import calibrations, customer_segments


def calibration_from_row(row: Any) -> Calibration:
    cuts = row["cut_points"]
    cut_points = CutPoints(
        mode=TierMode(row["mode"]),
        vip=Decimal(cuts["vip"]),
        key=Decimal(cuts["key"]),
        normal=Decimal(cuts["normal"]),
        population=row["population"],
    )
    return Calibration(
        id=row["id"],
        effective_at=row["effective_at"],
        cut_points=cut_points,
        breakpoints=breakpoints_from_json(row["rfm_breakpoints"], row["population"]),
        policy_version=row["policy_version"],
    )


def breakpoints_from_json(raw: dict[str, list[str]] | None, population: int) -> RfmBreakpoints | None:
    if raw is None:
        return None

    def pair(value: str) -> tuple[int, Decimal]:
        orders, _, net = value.partition("/")
        return int(orders), Decimal(net)

    r = tuple(int(v) for v in raw["recency_days"])
    f = tuple(pair(v) for v in raw["frequency"])
    m = tuple(Decimal(v) for v in raw["monetary"])
    return RfmBreakpoints(recency=r, frequency=f, monetary=m, population=population)  # type: ignore[arg-type]


async def latest_calibration(conn: AsyncConnection, policy: Policy) -> Calibration:
    """The calibration in force, or the provisional stand-in before the first one."""
    query = select(calibrations).order_by(calibrations.c.id.desc()).limit(1)
    row = (await conn.execute(query)).mappings().first()
    return Calibration.provisional(policy) if row is None else calibration_from_row(row)


async def record_calibration(
    conn: AsyncConnection,
    *,
    effective_at: datetime,
    trigger: str,
    cut_points: CutPoints,
    breakpoints: RfmBreakpoints | None,
    policy: Policy,
    consumer_offsets: list[dict[str, Any]],
    measured_offsets: list[dict[str, Any]] | None = None,
) -> int:
    """Insert a calibration; ``consumer_offsets`` is where the re-grade stands (what a rebuild replays up
    to), ``measured_offsets`` the snapshot the numbers were computed from (None: the same point)."""
    values = {
        "effective_at": effective_at,
        "trigger": trigger,
        "mode": str(cut_points.mode),
        "cut_points": {str(k): v for k, v in cut_points.as_dict().items()},
        "rfm_breakpoints": None if breakpoints is None else breakpoints.as_dict(),
        "population": cut_points.population,
        "policy_version": policy.version,
        "rfm_grid_version": policy.rfm.grid_version,
        "consumer_offsets": consumer_offsets,
        "measured_offsets": measured_offsets,
        "customers_graded": 0,
        "tier_changes": 0,
    }
    result = await conn.execute(insert(calibrations).values(**values).returning(calibrations.c.id))
    return int(result.scalar_one())


async def finish_calibration(conn: AsyncConnection, calibration_id: int, graded: int, tier_changes: int) -> None:
    await conn.execute(
        update(calibrations)
        .where(calibrations.c.id == calibration_id)
        .values(customers_graded=graded, tier_changes=tier_changes)
    )


async def consumer_offsets(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every stored next offset: the exact point of the input streams a calibration was taken at."""
    rows = await conn.execute(
        text("SELECT consumer_group, topic, partition, next_offset FROM consumer_offsets ORDER BY 1, 2, 3")
    )
    return [dict(r._mapping) for r in rows]


async def list_calibrations(conn: AsyncConnection, limit: int = 50) -> list[dict[str, Any]]:
    query = select(calibrations).order_by(calibrations.c.id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def oldest_customer_seen_at(conn: AsyncConnection) -> datetime | None:
    query = select(customer_segments.c.first_seen_at).order_by(customer_segments.c.first_seen_at).limit(1)
    return (await conn.execute(query)).scalar()
