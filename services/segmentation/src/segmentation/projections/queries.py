"""Read queries of the dashboard API: lists, distributions, one customer's history, alerts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentation.projections.read_model import (
    alert_log,
    calibrations,
    churn_alerts,
    customer_segments,
    segment_history,
)

cs = customer_segments.c

#: ``sort`` of the customer list → ORDER BY (customer_id last, so pages are stable).
SORTS: dict[str, tuple[Any, ...]] = {
    "risk": (cs.churn_score.desc(), cs.customer_id),
    "contribution": (cs.net_contribution.desc(), cs.customer_id),
    "recency": (cs.recency_days.asc().nulls_last(), cs.customer_id),
    "customer": (cs.customer_id,),
}


@dataclass(frozen=True)
class CustomerFilter:
    """What the customer list is narrowed to; None = any. ``region`` matches regardless of case."""

    tier: str | None = None
    segment: str | None = None
    status: str | None = None
    risk_band: str | None = None
    region: str | None = None
    r_score: int | None = None
    f_score: int | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        pairs = (
            (cs.value_tier, self.tier),
            (cs.rfm_segment, self.segment),
            (cs.activity_status, self.status),
            (cs.churn_band, self.risk_band),
            (cs.r_score, self.r_score),
            (cs.f_score, self.f_score),
        )
        found = [column == value for column, value in pairs if value is not None]
        if self.region is not None:
            found.append(func.lower(cs.region) == self.region.lower())
        return found


#: The customer's alert if it is live (its ``alert_id`` keeps pointing at a closed one until the next raise).
_live_alert = and_(churn_alerts.c.alert_id == cs.alert_id, churn_alerts.c.state != "closed")


async def list_customers(
    conn: AsyncConnection, where: CustomerFilter, *, sort: str, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """One page of customers with their live alert (``alert_id``, ``alert_state``; None without one)."""
    condition = and_(True, *where.conditions())
    total = (await conn.execute(select(func.count()).select_from(customer_segments).where(condition))).scalar_one()
    columns = [c for c in customer_segments.c if c.name != "alert_id"]
    query = (
        select(*columns, churn_alerts.c.alert_id, churn_alerts.c.state.label("alert_state"))
        .select_from(customer_segments.outerjoin(churn_alerts, _live_alert))
        .where(condition)
        .order_by(*SORTS[sort])
        .limit(limit)
        .offset(offset)
    )
    return int(total), [dict(r) for r in (await conn.execute(query)).mappings()]


async def distribution(conn: AsyncConnection, column: Any) -> tuple[list[dict[str, Any]], int, Decimal]:
    """Customers and trailing-window net contribution per value of ``column`` (NULL = not graded)."""
    query = select(column.label("key"), func.count().label("customers"), func.sum(cs.net_contribution).label("revenue"))
    rows = (await conn.execute(query.group_by(column))).mappings().all()
    customers = sum(r["customers"] for r in rows)
    revenue = sum((r["revenue"] or Decimal(0) for r in rows), Decimal(0))
    return [dict(r) for r in rows], customers, revenue


async def history(conn: AsyncConnection, customer_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
    query = (
        select(segment_history)
        .where(segment_history.c.customer_id == customer_id)
        .order_by(segment_history.c.id.desc())
        .limit(limit * 5)
    )
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def get_alert(conn: AsyncConnection, alert_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(_alerts().where(churn_alerts.c.alert_id == alert_id))).mappings().first()
    return None if row is None else dict(row)


async def list_alerts(
    conn: AsyncConnection, state: str | None, *, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    live = state is None or state == "live"
    condition = churn_alerts.c.state != "closed" if live else churn_alerts.c.state == state
    total = (await conn.execute(select(func.count()).select_from(churn_alerts).where(condition))).scalar_one()
    query = (
        _alerts()
        .where(condition)
        .order_by(cs.churn_score.desc(), churn_alerts.c.raised_at, churn_alerts.c.alert_id)
        .limit(limit)
        .offset(offset)
    )
    return int(total), [dict(r) for r in (await conn.execute(query)).mappings()]


def _alerts() -> Any:
    return select(
        churn_alerts,
        cs.company_name,
        cs.value_tier,
        cs.churn_score.label("current_score"),
        cs.churn_band.label("current_band"),
        cs.churn_reasons.label("current_reasons"),
    ).join(customer_segments, customer_segments.c.customer_id == churn_alerts.c.customer_id)


async def alert_history(conn: AsyncConnection, alert_id: str) -> list[dict[str, Any]]:
    query = select(alert_log).where(alert_log.c.alert_id == alert_id).order_by(alert_log.c.id)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def get_calibration(conn: AsyncConnection, calibration_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(calibrations).where(calibrations.c.id == calibration_id))).mappings().first()
    return None if row is None else dict(row)
