"""What the orders service knows about a customer: whether it may order, and its credit terms.

Folded from ``crm.customers.v1`` (CustomerRegistered, CustomerCreditTermsSet, CustomerDeactivated,
CustomerReactivated; every other customer event leaves it unchanged). Tolerant of order: an event for a
customer not seen registered yet makes a placeholder that cannot order until the registration arrives.
``version`` counts changes; the order-placing transaction checks it to detect a concurrent change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from orders.domain.credit import CreditTerms
from orders.domain.errors import CustomerDeactivated, UnknownCustomer
from shared.events import customers as contract
from shared.events.envelope import EventPayload


@dataclass(frozen=True)
class CustomerCredit:
    customer_id: str
    registered: bool = False
    active: bool = True
    terms: CreditTerms | None = None
    version: int = 0


def apply_customer_event(state: CustomerCredit, event: EventPayload) -> CustomerCredit:
    """The state after ``event``; the same object when the event does not concern credit."""
    match event:
        case contract.CustomerRegistered():
            changed = replace(state, registered=True)
        case contract.CustomerCreditTermsSet():
            terms = CreditTerms(
                credit_limit=event.credit_limit.amount,
                currency=event.credit_limit.currency,
                payment_days=event.payment_days,
                rating=str(event.rating),
            )
            changed = replace(state, terms=terms)
        case contract.CustomerDeactivated():
            changed = replace(state, active=False)
        case contract.CustomerReactivated():
            changed = replace(state, active=True)
        case _:
            return state
    return replace(changed, version=state.version + 1)


def ensure_may_order(customer_id: str, customer: CustomerCredit | None) -> CustomerCredit:
    """The customer, if it may place orders; else :class:`UnknownCustomer` / :class:`CustomerDeactivated`."""
    if customer is None or not customer.registered:
        raise UnknownCustomer(customer_id)
    if not customer.active:
        raise CustomerDeactivated(customer_id)
    return customer
