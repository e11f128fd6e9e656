"""The per-customer projection, folded from contract events. Pure: no I/O, no clock.

Projections must tolerate any interleaving of topics (DESIGN §2): an order for a customer not yet
registered creates a placeholder view; every rule here is order-independent across topics (sums,
maxima), and within a topic Kafka keeps each customer's events in order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from segmentation.domain.tiers import AbsoluteTierPolicy, value_tier
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope

ZERO = Decimal(0)


@dataclass(frozen=True)
class CustomerView:
    customer_id: str
    registered: bool = False
    company_name: str | None = None
    region: str | None = None
    stage: str | None = None
    orders_count: int = 0
    cancelled_orders: int = 0
    gross_revenue: Decimal = ZERO
    cancelled_amount: Decimal = ZERO
    returned_amount: Decimal = ZERO
    currency: str | None = None
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    complaints_total: int = 0
    open_complaints: int = 0
    value_tier: str = "prospect"
    events_applied: int = 0
    last_event_at: datetime | None = None
    segmentation_version: int = 0

    @property
    def net_revenue(self) -> Decimal:
        return self.gross_revenue - self.cancelled_amount - self.returned_amount

    @property
    def live_orders(self) -> int:
        return self.orders_count - self.cancelled_orders


def apply(view: CustomerView, envelope: Envelope, policy: AbsoluteTierPolicy) -> CustomerView:
    """Fold one event into the view and re-grade it."""
    view = _fold(view, envelope.data)
    last = envelope.occurred_at if view.last_event_at is None else max(view.last_event_at, envelope.occurred_at)
    view = replace(view, events_applied=view.events_applied + 1, last_event_at=last)
    return replace(view, value_tier=value_tier(view.net_revenue, view.live_orders, policy))


def _fold(view: CustomerView, data: object) -> CustomerView:
    match data:
        case customers.CustomerRegistered():
            return replace(
                view, registered=True, company_name=data.company_name, region=data.region, stage=str(data.stage)
            )
        case customers.CustomerStageAdvanced():
            return replace(view, stage=str(data.new_stage))
        case orders.OrderPlaced():
            placed = data.placed_at
            return replace(
                view,
                orders_count=view.orders_count + 1,
                gross_revenue=view.gross_revenue + data.total.amount,
                currency=view.currency or data.total.currency,
                first_order_at=placed if view.first_order_at is None else min(view.first_order_at, placed),
                last_order_at=placed if view.last_order_at is None else max(view.last_order_at, placed),
            )
        case orders.OrderCancelled():
            return replace(
                view,
                cancelled_orders=view.cancelled_orders + 1,
                cancelled_amount=view.cancelled_amount + data.amount.amount,
            )
        case orders.OrderReturned():
            return replace(view, returned_amount=view.returned_amount + data.amount.amount)
        case feedback.ComplaintFiled():
            return replace(view, complaints_total=view.complaints_total + 1, open_complaints=view.open_complaints + 1)
        case feedback.ComplaintResolved():
            return replace(view, open_complaints=max(0, view.open_complaints - 1))
        case feedback.ComplaintReopened():
            return replace(view, open_complaints=view.open_complaints + 1)
        case _:
            return view
