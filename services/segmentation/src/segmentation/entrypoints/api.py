"""HTTP API of the segmentation service: dashboards' reads, alert handling, on-demand recalibration."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, FastAPI, Query, Request, status
from fastapi.exceptions import RequestValidationError

from segmentation.application.alerts import AlertAction, AlertNotFound, handle_alert_command
from segmentation.application.recalibration import recalibrate
from segmentation.domain.policy import Policy
from segmentation.entrypoints import schemas
from segmentation.entrypoints.dashboard import PUBLIC_PATHS, caller_router, mount_dashboard
from segmentation.projections import queries
from segmentation.projections.calibrations import latest_calibration, list_calibrations
from segmentation.projections.read_model import customer_segments, get_view
from shared.api import CorrelationId, NotFound, Offset, create_app, database_check, kafka_check
from shared.clock import dated
from shared.runtime import Container

HISTORY_KINDS = ("tier", "rfm_segment", "activity", "churn_score", "lifecycle")
TIER_ORDER = ("vip", "key", "normal", "small", "prospect")
Tier = Literal["vip", "key", "normal", "small", "prospect"]
Status = Literal["active", "at_risk", "dormant", "lost", "reactivated"]
Band = Literal["low", "medium", "high"]
#: Activity statuses in lifecycle order (the order of the activity distribution; not graded last).
STATUS_ORDER: tuple[str, ...] = get_args(Status)


def build_api(container: Container) -> FastAPI:
    engine = container.engine
    policy: Policy = container.parts["policy"]
    clock = container.parts["clock"]
    segment_codes = [s.code for s in policy.rfm.segments]
    customers = APIRouter(tags=["customers"])
    overview = APIRouter(tags=["distributions"])
    alerts = APIRouter(tags=["alerts"])
    calibration = APIRouter(tags=["calibrations"])

    @customers.get(
        "/customers/{customer_id}/segment", response_model=schemas.SegmentOut, summary="One customer's segment"
    )
    async def customer_segment(customer_id: str) -> Any:
        async with engine.connect() as conn:
            row = await get_view(conn, customer_id)
        if row is None:
            raise NotFound("customer segment", customer_id)
        return row

    @customers.get(
        "/customers/{customer_id}/view",
        response_model=schemas.CustomerViewOut,
        summary="One customer's full segment view with reasons and history",
    )
    async def customer_view(customer_id: str) -> Any:
        async with engine.connect() as conn:
            row = await get_view(conn, customer_id)
            if row is None:
                raise NotFound("customer segment", customer_id)
            changes = await queries.history(conn, customer_id)
            alert_id, calibration_id = row["alert_id"], row["calibration_id"]
            alert = await queries.get_alert(conn, str(alert_id)) if alert_id else None
            log = await queries.alert_history(conn, str(alert_id)) if alert else []
            cal = await queries.get_calibration(conn, int(str(calibration_id))) if calibration_id else None
        return _view(row, changes, alert, log, cal, policy)

    @customers.get(
        "/customers", response_model=schemas.CustomerPage, summary="Customers by tier, segment, status, risk"
    )
    async def customer_list(
        tier: Tier | None = None,
        # a default, not Annotated: the description names the policy's segments, known only here
        segment: str | None = Query(None, description=f"RFM segment code: {', '.join(segment_codes)}"),
        status_: Annotated[Status | None, Query(alias="status", description="activity status")] = None,
        risk_band: Band | None = None,
        region: Annotated[
            str | None,
            Query(min_length=1, max_length=200, description="region, any case (GET /distributions/regions lists them)"),
        ] = None,
        r_score: Annotated[int | None, Query(ge=1, le=5, description="RFM recency score (R of the R×F grid)")] = None,
        f_score: Annotated[int | None, Query(ge=1, le=5, description="RFM frequency score (F of the grid)")] = None,
        sort: Literal["risk", "contribution", "recency", "customer"] = "risk",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Offset = 0,
    ) -> Any:
        where = queries.CustomerFilter(
            tier, _known_segment(segment, segment_codes), status_, risk_band, region, r_score, f_score
        )
        async with engine.connect() as conn:
            total, rows = await queries.list_customers(conn, where, sort=sort, limit=limit, offset=offset)
        return {"total": total, "limit": limit, "offset": offset, "items": rows}

    @overview.get(
        "/distributions",
        response_model=schemas.DistributionsOut,
        summary="Customers and revenue share per tier, RFM segment and activity status",
    )
    async def distributions() -> Any:
        async with engine.connect() as conn:
            tiers, n, revenue = await queries.distribution(conn, customer_segments.c.value_tier)
            segments, _, _ = await queries.distribution(conn, customer_segments.c.rfm_segment)
            activity, _, _ = await queries.distribution(conn, customer_segments.c.activity_status)
            current = await latest_calibration(conn, policy)
        tier_rows = {r["key"]: r for r in tiers}
        tiers = [tier_rows.get(t, {"key": t, "customers": 0, "revenue": Decimal(0)}) for t in TIER_ORDER]
        segments.sort(key=lambda r: _rank(r["key"], segment_codes))
        activity.sort(key=lambda r: _rank(r["key"], STATUS_ORDER))
        return {
            "customers": n,
            "revenue": revenue,
            "tiers": _shares(tiers, n, revenue),
            "segments": _shares(segments, n, revenue),
            "activity": _shares(activity, n, revenue),
            "calibration_id": current.id,
        }

    @overview.get(
        "/distributions/regions",
        response_model=schemas.RegionsOut,
        summary="Customers and revenue share per region (the values GET /customers?region= matches)",
    )
    async def regions() -> Any:
        async with engine.connect() as conn:
            rows, n, revenue = await queries.distribution(conn, customer_segments.c.region)
        rows.sort(key=lambda r: (r["key"] is None, -r["customers"], r["key"] or ""))
        return {"customers": n, "regions": _shares(rows, n, revenue)}

    @overview.get(
        "/distributions/rfm-grid",
        response_model=schemas.RfmGridOut,
        summary="Customers and revenue share per cell of the R×F grid, with the segment rule table",
    )
    async def rfm_grid() -> Any:
        cell = customer_segments.c.r_score * 10 + customer_segments.c.f_score
        async with engine.connect() as conn:
            rows, n, _ = await queries.distribution(conn, cell)
        return _grid(rows, n, policy)

    @alerts.get("/alerts", response_model=schemas.AlertPage, summary="Churn-risk alerts")
    async def alert_list(
        state: Annotated[
            Literal["live", "open", "acknowledged", "snoozed", "closed"],
            Query(description="live = open, acknowledged or snoozed"),
        ] = "live",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Offset = 0,
    ) -> Any:
        async with engine.connect() as conn:
            total, rows = await queries.list_alerts(conn, state, limit=limit, offset=offset)
        return {"total": total, "limit": limit, "offset": offset, "items": rows}

    @alerts.get("/alerts/{alert_id}", response_model=schemas.AlertOut, summary="One alert with its log")
    async def alert_detail(alert_id: str) -> Any:
        return await _alert_with_log(alert_id)

    async def _alert_with_log(alert_id: str) -> dict[str, Any]:
        async with engine.connect() as conn:
            row = await queries.get_alert(conn, alert_id)
            if row is None:
                raise NotFound("alert", alert_id)
            row["log"] = await queries.alert_history(conn, alert_id)
        return row

    async def act(request: Request, alert_id: str, action: AlertAction, by: str | None, cid: str, **kw: Any) -> Any:
        caller = getattr(request.state, "caller", None)
        actor = by or (f"token:{caller.id}" if caller is not None else "api")
        try:
            await handle_alert_command(
                engine,
                topic=container.topics.segmentation,
                bands=policy.churn.bands,
                alert_id=alert_id,
                action=action,
                now=clock(),
                actor=actor,
                correlation_id=cid,
                **kw,
            )
        except AlertNotFound as exc:
            raise NotFound("alert", alert_id) from exc
        return await _alert_with_log(alert_id)

    @alerts.post("/alerts/{alert_id}/acknowledgement", response_model=schemas.AlertOut, summary="Take an alert in hand")
    async def acknowledge(
        request: Request, alert_id: str, cid: CorrelationId, body: schemas.AcknowledgeIn | None = None
    ) -> Any:
        body = body or schemas.AcknowledgeIn()  # every field is optional: no body at all is the same as {}
        return await act(request, alert_id, AlertAction.ACKNOWLEDGE, body.by, cid)

    @alerts.post("/alerts/{alert_id}/snooze", response_model=schemas.AlertOut, summary="Silence an alert until a time")
    async def snooze(request: Request, alert_id: str, body: schemas.SnoozeIn, cid: CorrelationId) -> Any:
        return await act(request, alert_id, AlertAction.SNOOZE, body.by, cid, until=body.until)

    @alerts.post("/alerts/{alert_id}/closure", response_model=schemas.AlertOut, summary="Close an alert with a reason")
    async def close(request: Request, alert_id: str, body: schemas.CloseIn, cid: CorrelationId) -> Any:
        return await act(request, alert_id, AlertAction.CLOSE, body.by, cid, reason=body.reason)

    @calibration.post(
        "/calibrations",
        response_model=schemas.CalibrationOut,
        status_code=status.HTTP_201_CREATED,
        summary="Recalibrate tier cut points and RFM breakpoints now (or as of an instant) and re-grade everyone",
    )
    async def create_calibration(body: schemas.CalibrationIn | None = None) -> Any:
        # an instant ahead of the clock would grade on orders not yet placed and take effect in the future
        as_of = dated(body.as_of if body is not None else None, clock(), field="as_of")
        result = await recalibrate(engine, container.parts["assessor"], as_of=as_of, trigger="api")
        assert result is not None
        async with engine.connect() as conn:
            return await queries.get_calibration(conn, result.calibration_id)

    @calibration.get("/calibrations", response_model=list[schemas.CalibrationOut], summary="Recorded calibrations")
    async def calibration_list(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
        async with engine.connect() as conn:
            return await list_calibrations(conn, limit)

    app = create_app(
        service="segmentation",
        title="Tierstream segmentation",
        description="Live customer segmentation: value tiers, RFM, lifecycle, activity, churn risk and alerts. "
        "A web dashboard over this API is served at /dashboard/.",
        routers=[customers, overview, alerts, calibration, caller_router(clock)],
        settings=container.settings,
        ready_checks={
            "database": database_check(engine),
        },
        advisory_checks={"kafka": kafka_check(container.settings.kafka_bootstrap_servers)},
        public_paths=PUBLIC_PATHS,
    )
    mount_dashboard(app)
    return app


def _known_segment(segment: str | None, codes: Sequence[str]) -> str | None:
    """``segment`` if the policy's rule table has it: an unknown code is a typing mistake (422), not an
    empty list."""
    if segment is None or segment in codes:
        return segment
    msg = f"unknown RFM segment; the policy's segments are {', '.join(codes)}"
    raise RequestValidationError([{"type": "enum", "loc": ("query", "segment"), "msg": msg, "input": segment}])


def _rank(key: str | None, order: Sequence[str]) -> int:
    """Where ``key`` comes in ``order`` (unknown and null keys last)."""
    return order.index(key) if key in order else len(order)


def _shares(rows: list[dict[str, Any]], customers: int, revenue: Decimal) -> list[dict[str, Any]]:
    def pct(part: Decimal, whole: Decimal) -> Decimal:
        return (Decimal(100) * part / whole).quantize(Decimal("0.01")) if whole else Decimal("0.00")

    return [
        {
            "key": r["key"],
            "customers": r["customers"],
            "customer_share_pct": pct(Decimal(r["customers"]), Decimal(customers)),
            "revenue": r["revenue"] or Decimal(0),
            "revenue_share_pct": pct(r["revenue"] or Decimal(0), revenue),
        }
        for r in rows
    ]


def _grid(rows: list[dict[str, Any]], customers: int, policy: Policy) -> dict[str, Any]:
    """The 25 cells (R 5 → 1, F 1 → 5) with counts and shares among the customers that have scores."""
    by_cell = {r["key"]: r for r in rows if r["key"] is not None}
    scored = sum(r["customers"] for r in by_cell.values())
    revenue = sum((r["revenue"] or Decimal(0) for r in by_cell.values()), Decimal(0))
    cells = []
    for r in range(5, 0, -1):
        for f in range(1, 6):
            row = by_cell.get(r * 10 + f, {"customers": 0, "revenue": Decimal(0)})
            [share] = _shares([{"key": None, **row}], scored, revenue)
            cells.append({**share, "r_score": r, "f_score": f, "segment": policy.rfm.segment_of(r, f).code})
    return {
        "customers": customers,
        "scored": scored,
        "grid_version": policy.rfm.grid_version,
        "segments": [{"code": s.code, "label": s.label, "r": list(s.r), "f": list(s.f)} for s in policy.rfm.segments],
        "cells": cells,
    }


def _view(
    row: dict[str, Any],
    changes: list[dict[str, Any]],
    alert: dict[str, Any] | None,
    log: list[dict[str, Any]],
    cal: dict[str, Any] | None,
    policy: Policy,
) -> dict[str, Any]:
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for change in changes:
        if len(by_kind[change["kind"]]) < 50:
            by_kind[change["kind"]].append({**change, "cause_event_id": _str(change["cause_event_id"])})
    labels = {s.code: s.label for s in policy.rfm.segments}
    if alert is not None:
        alert["log"] = log
    return {
        **{k: row[k] for k in ("customer_id", "registered", "company_name", "region", "stage", "deactivated")},
        "lifecycle_stage": row["lifecycle_stage"],
        "figures": row,
        "tier": {
            "value_tier": row["value_tier"],
            "candidate_tier": row["candidate_tier"],
            "net_contribution": row["net_contribution"],
            "currency": row["currency"],
            "live_orders": row["live_orders"],
            "anchor_tier": row["anchor_tier"],
            "recalibrations_below": row["tier_below"],
            "calibration_id": row["calibration_id"],
            "cut_points": None if cal is None else cal["cut_points"],
        },
        "rfm": {
            "recency_days": row["recency_days"],
            "frequency": row["window_orders"],
            "monetary": row["net_contribution"],
            "r_score": row["r_score"],
            "f_score": row["f_score"],
            "m_score": row["m_score"],
            "segment": row["rfm_segment"],
            "segment_label": labels.get(row["rfm_segment"]) if row["rfm_segment"] else None,
        },
        "activity": {
            "status": row["activity_status"],
            "reason": row["activity_reason"],
            "days_since_last_order": row["recency_days"],
            "median_gap_days": row["median_gap_days"],
            "average_order_value": row["average_order_value"],
            "spend_last_90": row["spend_last_90"],
            "spend_previous_90": row["spend_previous_90"],
        },
        "churn": {
            "score": row["churn_score"],
            "band": row["churn_band"],
            "reasons": row["churn_reasons"],
            "open_complaints": row["open_complaints"],
            "complaints_past_sla": row["complaints_past_sla"],
            "complaints_reopened": row["complaints_reopened"],
            "latest_csat": row["latest_csat"],
            "latest_nps": row["latest_nps"],
            "csat_average": row["csat_average"],
            "nps": row["nps"],
            "overdue_amount": row["overdue_amount"],
            "overdue_bucket": row["overdue_bucket"],
            "credit_holds": row["credit_holds"],
        },
        "alert": alert,
        "history": {kind: by_kind.get(kind, []) for kind in HISTORY_KINDS},
        "assessed_at": row["assessed_at"],
    }


def _str(value: object) -> str | None:
    return None if value is None else str(value)
