"""Facts kept between polls are compact: no per-customer dict or empty change sets, shared repeated texts,
and the remembered currency still follows every way orders are added."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import segmentation_builders as b

from segmentation.domain.facts import NOTHING_CHANGED, CustomerFacts, OrderFact
from segmentation.projections.facts_cache import FactsCache
from segmentation.projections.store import fact_rows
from shared.events.registry import parse_envelope

pytestmark = pytest.mark.unit


def test_facts_carry_no_instance_dict() -> None:
    facts = b.fold([b.registered(), b.placed("o-1", "10", 0)])
    assert not hasattr(facts, "__dict__")
    assert not hasattr(facts.profile, "__dict__")


def test_saved_facts_share_the_empty_change_set_until_a_fact_changes() -> None:
    facts = b.fold([b.placed("o-1", "10", 0), b.survey("s-1", csat=4), b.complaint("k-1")])
    assert (facts.changed_orders, facts.changed_surveys, facts.changed_complaints) == ({"o-1"}, {"s-1"}, {"k-1"})

    facts.mark_saved()
    assert facts.changed_orders is NOTHING_CHANGED
    assert facts.changed_surveys is NOTHING_CHANGED
    assert facts.changed_complaints is NOTHING_CHANGED
    assert fact_rows(facts) == ([], [], [])

    other = b.fold([b.placed("o-9", "10", 0)])
    other.mark_saved()
    facts.apply(b.placed("o-2", "20", 1))
    facts.apply(b.paid("o-2", "20", "0"))
    assert facts.changed_orders == {"o-2"}
    # another customer saved with the same shared empty set has still nothing to write
    assert other.changed_orders is NOTHING_CHANGED and fact_rows(other) == ([], [], [])
    assert [row[1] for row in fact_rows(facts)[0]] == ["o-2"]


def test_a_cached_customer_has_no_pending_rows() -> None:
    cache = FactsCache(2)
    facts = b.fold([b.placed("o-1", "10", 0)])
    token = uuid.uuid4()
    cache.put(b.CID, token, facts)

    taken = cache.take(b.CID, token)
    assert taken is facts
    assert fact_rows(taken) == ([], [], [])


def test_repeated_texts_of_different_customers_are_one_object() -> None:
    def folded(customer_id: str) -> CustomerFacts:
        # Through JSON, as the consumer gets them: every event brings its own copies of the strings.
        events = [
            b.registered(customer_id),
            b.placed(f"{customer_id}-o", "10", 0, customer_id),
        ]
        return b.fold([parse_envelope(e.to_json()) for e in events], customer_id)

    one, two = folded("c-1"), folded("c-2")
    assert one.profile.region == "East"
    assert one.profile.region is two.profile.region
    assert one.profile.sales_stage is two.profile.sales_stage
    assert one.orders["c-1-o"].currency is two.orders["c-2-o"].currency


def test_the_remembered_currency_follows_orders_added_by_the_loader() -> None:
    facts = b.fold([b.placed("o-2", "10", 5)])
    facts.orders["o-2"].currency = "EUR"
    assert facts.currency == "EUR"

    # The store adds loaded orders to the dictionary directly, without ``order()``.
    earlier = OrderFact("o-1", b.T0, Decimal(5), "USD")
    facts.orders["o-1"] = earlier
    assert facts.currency == "USD"

    facts.apply(b.placed("o-0", "10", -3))  # an even earlier order, folded from an event
    assert facts.currency == "CNY"
    assert facts.orders["o-0"].placed_at == b.T0 - timedelta(days=3)
