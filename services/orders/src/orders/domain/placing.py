"""Placing an order for a customer: may it order, the credit check, the payment terms — one domain call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from orders.domain import credit as rules
from orders.domain.customer_credit import CustomerCredit, ensure_may_order
from orders.domain.errors import AmountOutOfRange
from orders.domain.order import LARGEST_AMOUNT, Order, OrderLine, order_total


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
    ``exposure``; refuses unknown and deactivated customers, and a total or an exposure beyond
    :data:`LARGEST_AMOUNT` (naming ``lines``)."""
    known = ensure_may_order(customer_id, customer)
    decision = rules.assess(
        order_total=order_total(lines),
        currency=currency,
        exposure=exposure,
        terms=known.terms,
        as_of=placed_at.date(),
        policy=policy,
    )
    if decision.exposure > LARGEST_AMOUNT:
        raise AmountOutOfRange(
            f"customer {customer_id!r}'s exposure with this order", decision.exposure, LARGEST_AMOUNT
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
