"""Refusals of the orders domain.

A plain :class:`~shared.eventsourcing.aggregate.DomainError` is a rule about the order's *state*
(already cancelled, not on hold …) and becomes HTTP 409. A :class:`FieldRuleViolation` is caused by one
input field (an overpayment, an unknown customer) and becomes HTTP 422 with a field error whose
``type`` is :attr:`code`, the same shape as FastAPI's validation errors.
"""

from __future__ import annotations

from shared.eventsourcing.aggregate import FieldRuleViolation


class UnknownCustomer(FieldRuleViolation):
    """The orders service has not (yet) heard of this customer from ``crm.customers.v1``."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(
            f"customer {customer_id!r} is not known to the orders service (yet: registrations arrive "
            "through crm.customers.v1 within about a second)",
            field="customer_id",
            code="unknown_customer",
            value=customer_id,
        )


class CustomerDeactivated(FieldRuleViolation):
    def __init__(self, customer_id: str) -> None:
        super().__init__(
            f"customer {customer_id!r} is deactivated and cannot place orders",
            field="customer_id",
            code="customer_deactivated",
            value=customer_id,
        )


class AmountOutOfRange(FieldRuleViolation):
    """An order whose total — or the customer's exposure with it — is beyond the largest amount the
    receivables hold (:data:`orders.domain.order.LARGEST_AMOUNT`); caused by its lines."""

    def __init__(self, what: str, amount: object, largest: object) -> None:
        super().__init__(
            f"{what} {amount} is beyond the largest amount an order may carry ({largest})",
            field="lines",
            code="amount_out_of_range",
            value=str(amount),
        )


class CreditCheckStale(Exception):
    """The customer's credit position changed between the credit check and the append (retry)."""
