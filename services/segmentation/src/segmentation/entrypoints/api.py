"""Read API of the segmentation service (dashboards)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from segmentation.projections.read_model import get_view
from shared.api import NotFound, create_app, database_check, kafka_check
from shared.events.envelope import DecimalString
from shared.runtime import Container


class SegmentOut(BaseModel):
    customer_id: str
    registered: bool
    company_name: str | None
    region: str | None
    stage: str | None
    value_tier: str
    orders_count: int
    cancelled_orders: int
    gross_revenue: DecimalString
    cancelled_amount: DecimalString
    returned_amount: DecimalString
    net_revenue: DecimalString
    currency: str | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    complaints_total: int
    open_complaints: int
    events_applied: int
    last_event_at: datetime | None
    updated_at: datetime


def build_api(container: Container) -> FastAPI:
    router = APIRouter(tags=["segments"])

    @router.get("/customers/{customer_id}/segment", response_model=SegmentOut, summary="One customer's segment")
    async def customer_segment(customer_id: str) -> SegmentOut:
        async with container.engine.connect() as conn:
            row = await get_view(conn, customer_id)
        if row is None:
            raise NotFound("customer segment", customer_id)
        return SegmentOut.model_validate(row)

    return create_app(
        service="segmentation",
        title="Tierstream segmentation",
        description="Live customer projections: value tier, revenue, orders, complaints.",
        routers=[router],
        ready_checks={
            "database": database_check(container.engine),
            "kafka": kafka_check(container.settings.kafka_bootstrap_servers),
        },
    )
