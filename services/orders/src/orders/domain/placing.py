"""Placing an order for a customer: may it order, the credit check, the payment terms — one domain call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from orders.domain import credit as rules
from orders.domain.customer_credit import CustomerCredit, ensure_may_order
from orders.domain.order import Order, OrderLine


def place_order(
    order_id: str,
    customer_id: str,
    lines: Sequence[OrderLine],
    *,
    currency: str,
    placed_at: datetime,
    customer: CustomerCredit | None,
    exposure: rules.Exposure,
    policy: rules.CreditPolicy,
) -> Order:
    """The new Order (held when the credit check fails), for ``customer`` as orders knows it, owing
    ``exposure``; refuses unknown and deactivated customers."""
    known = ensure_may_order(customer_id, customer)
    decision = rules.assess(
        order_total=sum((line.amount for line in lines), Decimal(0)),
        currency=currency,
        exposure=exposure,
        terms=known.terms,
        as_of=placed_at.date(),
        policy=policy,
    )
    return Order.place(
        order_id,
        customer_id,
        lines,
        currency=currency,
        placed_at=placed_at,
        payment_days=rules.payment_days_for(known.terms, policy),
        credit=decision,
    )
