"""What the orders service knows about a customer: whether it may order, and its credit terms.

Folded from ``crm.customers.v1`` (CustomerRegistered, CustomerCreditTermsSet, CustomerDeactivated,
CustomerReactivated; every other customer event leaves it unchanged). Tolerant of order: an event for a
customer not seen registered yet makes a placeholder that cannot order until the registration arrives.

**Order-independent.** Every event on that topic is an event of the customer aggregate and carries its
position in the customer's stream (the envelope's ``aggregate_version``). Each piece of state that an event
*replaces* remembers the stream version that set it — ``terms_stream_version`` for the credit terms,
``status_stream_version`` for ``active`` — and an event at or below that version leaves it alone. So an
older event that arrives after newer ones (a dead letter re-driven later) changes nothing, and the live fold
ends where a replay from the beginning ends. ``registered`` only ever turns on, so CustomerRegistered
(always version 1) marks the customer whenever it arrives and cannot undo anything newer.

``version`` is another thing: the *credit version*, which counts changes — and orders placed — so that the
order-placing transaction can tell that the position it checked is still current. An event that is ignored
or changes nothing does not move it.
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
    #: the credit version (optimistic concurrency of the credit check), not a position in any stream
    version: int = 0
    #: customer-stream version of the CustomerCreditTermsSet that set ``terms`` (0: none applied yet)
    terms_stream_version: int = 0
    #: customer-stream version of the CustomerDeactivated / CustomerReactivated that set ``active`` (0: none)
    status_stream_version: int = 0


def superseded_by(state: CustomerCredit, event: EventPayload, stream_version: int) -> int | None:
    """The stream version of the event that already decided what ``event`` (the ``stream_version``-th event
    of the customer's stream) would replace, when that is not older than ``event``; else None (it applies,
    or it replaces nothing)."""
    match event:
        case contract.CustomerCreditTermsSet():
            decided = state.terms_stream_version
        case contract.CustomerDeactivated() | contract.CustomerReactivated():
            decided = state.status_stream_version
        case _:
            return None
    return decided if decided >= stream_version else None


def apply_customer_event(state: CustomerCredit, event: EventPayload, stream_version: int) -> CustomerCredit:
    """The state after ``event``, the ``stream_version``-th event of the customer's stream; the same object
    when the event does not concern credit, changes nothing, or is older than what set the state it replaces."""
    if superseded_by(state, event, stream_version) is not None:
        return state
    match event:
        case contract.CustomerRegistered() if not state.registered:
            changed = replace(state, registered=True)
        case contract.CustomerCreditTermsSet():
            changed = replace(state, terms=_terms_of(event), terms_stream_version=stream_version)
        case contract.CustomerDeactivated():
            changed = replace(state, active=False, status_stream_version=stream_version)
        case contract.CustomerReactivated():
            changed = replace(state, active=True, status_stream_version=stream_version)
        case _:
            return state
    return replace(changed, version=state.version + 1)


def _terms_of(event: contract.CustomerCreditTermsSet) -> CreditTerms:
    return CreditTerms(
        credit_limit=event.credit_limit.amount,
        currency=event.credit_limit.currency,
        payment_days=event.payment_days,
        rating=str(event.rating),
    )


def ensure_may_order(customer_id: str, customer: CustomerCredit | None) -> CustomerCredit:
    """The customer, if it may place orders; else :class:`UnknownCustomer` / :class:`CustomerDeactivated`."""
    if customer is None or not customer.registered:
        raise UnknownCustomer(customer_id)
    if not customer.active:
        raise CustomerDeactivated(customer_id)
    return customer
