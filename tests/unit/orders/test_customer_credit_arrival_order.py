"""The customer credit fold does not depend on arrival order: each piece of state is set by the newest
event of the customer's stream that replaces it (docs/orders.md, "Who may order").

A dead letter re-driven with ``tierstream deadletters redrive`` arrives after the customer's later events;
the live fold must end where a replay of the stream in order ends.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.domain.credit import CreditTerms
from orders.domain.customer_credit import CustomerCredit, apply_customer_event, ensure_may_order, superseded_by
from orders.domain.errors import CustomerDeactivated
from shared.events import customers as contract
from shared.events.envelope import EventPayload, Money

pytestmark = pytest.mark.unit

Versioned = tuple[int, EventPayload]  # (the event's version in the customer's stream, the event)

REGISTERED = contract.CustomerRegistered(customer_id="c-1", company_name="Acme", region="East")
DEACTIVATED = contract.CustomerDeactivated(reason="closed down")
REACTIVATED = contract.CustomerReactivated(reason="reopened")
PROFILE_UPDATED = contract.CustomerProfileUpdated(changed_fields=["region"], region="West")


def terms_set(limit: int, days: int = 30) -> contract.CustomerCreditTermsSet:
    return contract.CustomerCreditTermsSet(
        credit_limit=Money(amount=Decimal(limit), currency="CNY"), payment_days=days, rating="B"
    )


def terms(limit: int, days: int = 30) -> CreditTerms:
    return CreditTerms(credit_limit=Decimal(limit), currency="CNY", payment_days=days, rating="B")


def fold(events: list[Versioned] | tuple[Versioned, ...]) -> CustomerCredit:
    state = CustomerCredit(customer_id="c-1")
    for version, event in events:
        state = apply_customer_event(state, event, version)
    return state


def projected(state: CustomerCredit) -> CustomerCredit:
    """What the projection knows, without the credit version: that one counts the changes applied (and
    orders placed) for the credit check's concurrency, so it may differ with the arrival order."""
    return replace(state, version=0)


# -- given events / when an event arrives / then the state -------------------------------------------------
CASES = [
    pytest.param(
        [(1, REGISTERED), (4, terms_set(5000))],
        (2, terms_set(1000)),
        {"terms": terms(5000), "terms_stream_version": 4},
        id="older terms arriving after newer terms leave the newer terms",
    ),
    pytest.param(
        [(1, REGISTERED), (2, terms_set(1000))],
        (4, terms_set(5000, days=60)),
        {"terms": terms(5000, days=60), "terms_stream_version": 4},
        id="newer terms replace older terms",
    ),
    pytest.param(
        [(1, REGISTERED), (5, REACTIVATED)],
        (3, DEACTIVATED),
        {"active": True, "status_stream_version": 5},
        id="an older deactivation arriving after a reactivation leaves the customer active",
    ),
    pytest.param(
        [(1, REGISTERED), (3, DEACTIVATED)],
        (2, REACTIVATED),
        {"active": False, "status_stream_version": 3},
        id="an older reactivation arriving after a deactivation leaves the customer deactivated",
    ),
    pytest.param(
        [(1, REGISTERED), (2, DEACTIVATED)],
        (3, REACTIVATED),
        {"active": True, "status_stream_version": 3},
        id="a newer reactivation reactivates",
    ),
    pytest.param(
        [(1, REGISTERED), (4, terms_set(5000))],
        (3, DEACTIVATED),
        {"active": False, "status_stream_version": 3, "terms": terms(5000), "terms_stream_version": 4},
        id="newer terms do not make an older deactivation stale: they set another piece of state",
    ),
    pytest.param(
        [(1, REGISTERED), (5, REACTIVATED)],
        (2, terms_set(1000)),
        {"active": True, "terms": terms(1000), "terms_stream_version": 2},
        id="a newer status change does not make older terms stale",
    ),
    pytest.param(
        [(4, terms_set(5000)), (3, DEACTIVATED)],
        (1, REGISTERED),
        {"registered": True, "active": False, "terms": terms(5000), "terms_stream_version": 4},
        id="a late registration marks the customer registered and undoes nothing newer",
    ),
    pytest.param(
        [(1, REGISTERED), (2, terms_set(1000))],
        (2, terms_set(1000)),
        {"terms": terms(1000), "terms_stream_version": 2},
        id="the same event applied twice changes nothing the second time",
    ),
    pytest.param(
        [(1, REGISTERED), (2, terms_set(1000))],
        (3, PROFILE_UPDATED),
        {"terms": terms(1000), "terms_stream_version": 2, "status_stream_version": 0},
        id="events that do not concern credit change nothing",
    ),
]


@pytest.mark.parametrize(("given_events", "when", "then"), CASES)
def test_an_event_sets_only_what_no_newer_event_of_the_stream_has_set(
    given_events: list[Versioned], when: Versioned, then: dict[str, object]
) -> None:
    before = fold(given_events)

    after = apply_customer_event(before, when[1], when[0])

    assert {name: getattr(after, name) for name in then} == then


@pytest.mark.parametrize(
    ("given_events", "when", "winner"),
    [
        ([(1, REGISTERED), (4, terms_set(5000))], (2, terms_set(1000)), 4),
        ([(1, REGISTERED), (5, REACTIVATED)], (3, DEACTIVATED), 5),
        ([(1, REGISTERED), (4, terms_set(5000))], (6, terms_set(1000)), None),
        ([(1, REGISTERED), (4, terms_set(5000))], (3, DEACTIVATED), None),
        ([(4, terms_set(5000)), (5, REACTIVATED)], (1, REGISTERED), None),
    ],
)
def test_a_stale_event_names_the_newer_version_that_won(
    given_events: list[Versioned], when: Versioned, winner: int | None
) -> None:
    assert superseded_by(fold(given_events), when[1], when[0]) == winner


def test_an_ignored_stale_event_does_not_move_the_credit_version() -> None:
    before = fold([(1, REGISTERED), (4, terms_set(5000)), (5, REACTIVATED)])

    assert apply_customer_event(before, terms_set(1000), 2) is before
    assert apply_customer_event(before, DEACTIVATED, 3) is before


def test_an_applied_change_moves_the_credit_version_so_a_concurrent_credit_check_notices() -> None:
    before = fold([(1, REGISTERED), (4, terms_set(5000))])

    assert apply_customer_event(before, DEACTIVATED, 3).version == before.version + 1


def test_a_stale_deactivation_after_a_reactivation_leaves_the_customer_able_to_order() -> None:
    state = fold([(1, REGISTERED), (2, DEACTIVATED), (4, REACTIVATED), (3, DEACTIVATED)])

    assert ensure_may_order("c-1", state) is state


def test_a_deactivation_newer_than_the_reactivation_still_refuses_orders() -> None:
    state = fold([(1, REGISTERED), (3, REACTIVATED), (4, DEACTIVATED), (2, DEACTIVATED)])

    with pytest.raises(CustomerDeactivated):
        ensure_may_order("c-1", state)


# -- every arrival order of one history folds to the same state ------------------------------------------
HISTORY: list[Versioned] = [
    (1, REGISTERED),
    (2, terms_set(1000, days=30)),
    (3, DEACTIVATED),
    (4, terms_set(5000, days=60)),
    (5, REACTIVATED),
]
IN_ORDER = CustomerCredit(
    customer_id="c-1",
    registered=True,
    active=True,
    terms=terms(5000, days=60),
    terms_stream_version=4,
    status_stream_version=5,
)


@pytest.mark.parametrize("arrival", list(itertools.permutations(HISTORY)), ids=lambda a: "".join(str(v) for v, _ in a))
def test_every_arrival_order_of_a_history_folds_to_the_state_of_the_stream_in_order(
    arrival: tuple[Versioned, ...],
) -> None:
    state = fold(arrival)

    assert projected(state) == IN_ORDER
    assert ensure_may_order("c-1", state) is state


def _history(kinds: list[str | int]) -> list[Versioned]:
    """A customer's stream: its registration, then one event per kind (a limit = terms with that limit)."""
    by_kind: dict[str, EventPayload] = {
        "deactivated": DEACTIVATED,
        "reactivated": REACTIVATED,
        "profile": PROFILE_UPDATED,
    }
    events = [terms_set(kind) if isinstance(kind, int) else by_kind[kind] for kind in kinds]
    return list(enumerate([REGISTERED, *events], start=1))


kinds = st.lists(
    st.one_of(st.sampled_from(["deactivated", "reactivated", "profile"]), st.integers(min_value=0, max_value=10**6)),
    max_size=8,
)


@given(kinds.flatmap(lambda ks: st.tuples(st.just(_history(ks)), st.permutations(_history(ks)))))
def test_any_history_folds_to_its_newest_terms_and_status_whatever_the_arrival_order(
    history_and_arrival: tuple[list[Versioned], list[Versioned]],
) -> None:
    history, arrival = history_and_arrival
    newest_terms = next((e for _, e in reversed(history) if isinstance(e, contract.CustomerCreditTermsSet)), None)
    status_changes = (contract.CustomerDeactivated, contract.CustomerReactivated)
    newest_status = next((e for _, e in reversed(history) if isinstance(e, status_changes)), None)

    state = fold(arrival)

    assert projected(state) == projected(fold(history))
    assert state.registered
    assert state.terms == (None if newest_terms is None else terms(int(newest_terms.credit_limit.amount)))
    assert state.active == (not isinstance(newest_status, contract.CustomerDeactivated))
    assert state.version >= 1
