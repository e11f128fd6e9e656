"""What orders folds from crm.customers.v1: may the customer order, and on which terms."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.domain.customer_credit import CustomerCredit, apply_customer_event, ensure_may_order
from orders.domain.errors import CustomerDeactivated, UnknownCustomer
from shared.events import customers as contract
from shared.events.envelope import EventPayload, Money

pytestmark = pytest.mark.unit

REGISTERED = contract.CustomerRegistered(customer_id="c-1", company_name="Acme", region="East")
TERMS = contract.CustomerCreditTermsSet(
    credit_limit=Money(amount=Decimal("5000"), currency="GBP"), payment_days=45, rating="B"
)
DEACTIVATED = contract.CustomerDeactivated(reason="closed down")
REACTIVATED = contract.CustomerReactivated(reason="reopened")


def fold(*events: EventPayload) -> CustomerCredit:
    """The events as the customer's stream in order (versions 1, 2, 3...)."""
    state = CustomerCredit(customer_id="c-1")
    for version, event in enumerate(events, start=1):
        state = apply_customer_event(state, event, version)
    return state


def test_a_registered_customer_may_order_without_terms() -> None:
    state = fold(REGISTERED)
    assert (state.registered, state.active, state.terms, state.version) == (True, True, None, 1)
    assert ensure_may_order("c-1", state) is state


def test_credit_terms_are_kept_with_their_currency() -> None:
    state = fold(REGISTERED, TERMS)
    assert state.terms is not None
    assert (state.terms.credit_limit, state.terms.currency, state.terms.payment_days, state.terms.rating) == (
        Decimal("5000"),
        "GBP",
        45,
        "B",
    )


@pytest.mark.parametrize(
    ("events", "refusal"),
    [
        ((), UnknownCustomer),
        ((TERMS,), UnknownCustomer),  # terms seen before the registration: a placeholder, not a customer
        ((REGISTERED, DEACTIVATED), CustomerDeactivated),
        ((REGISTERED, DEACTIVATED, REACTIVATED), None),
        ((REGISTERED, DEACTIVATED, REACTIVATED, DEACTIVATED), CustomerDeactivated),
    ],
)
def test_only_registered_active_customers_may_order(events: tuple, refusal: type[Exception] | None) -> None:
    state = fold(*events) if events else None
    if refusal is None:
        ensure_may_order("c-1", state)
    else:
        with pytest.raises(refusal) as caught:
            ensure_may_order("c-1", state)
        assert caught.value.field == "customer_id"  # type: ignore[attr-defined]


def test_events_that_do_not_concern_credit_change_nothing() -> None:
    state = fold(REGISTERED)
    other = contract.CustomerContactRemoved(contact_id="k-1")
    assert apply_customer_event(state, other, 2) is state


def test_every_change_moves_the_version_so_a_concurrent_credit_check_notices() -> None:
    assert fold(REGISTERED, TERMS, DEACTIVATED, REACTIVATED).version == 4
