"""Assessing a customer: what changed becomes history rows, alert rows and contract events."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
import segmentation_builders as b

from segmentation.application.assessment import Assessor, Trigger, alert_id_for
from segmentation.domain.cutpoints import CutPoints
from segmentation.domain.facts import CustomerFacts
from segmentation.domain.grading import Calibration
from segmentation.domain.policy import Policy, TierMode
from segmentation.domain.rfm import RfmBreakpoints
from segmentation.projections.store import ORDER_COLUMNS, SEGMENT_COLUMNS, Changes, CustomerRecord, Published
from shared.events.registry import parse_envelope
from shared.events.vocabulary import OverdueBucket

pytestmark = pytest.mark.unit

POLICY = Policy()


def segment_row_of(row: tuple[object, ...]) -> dict[str, object]:
    """A staged ``customer_segments`` row (a tuple in column order) by column name."""
    return dict(zip(SEGMENT_COLUMNS, row, strict=True))


ASSESSOR = Assessor(POLICY, "crm.segmentation.v1")
PROVISIONAL = Calibration.provisional(POLICY)
CALIBRATED = Calibration(
    3,
    b.T0,
    CutPoints(TierMode.PERCENTILE, Decimal(1000), Decimal(500), Decimal(100), 10),
    RfmBreakpoints(
        (60, 30, 15, 5),
        ((1, Decimal(0)), (2, Decimal(0)), (3, Decimal(0)), (5, Decimal(0))),
        (Decimal(50), Decimal(100), Decimal(500), Decimal(1000)),
        10,
    ),
    "default-v1",
)


def assess(record: CustomerRecord, calibration: Calibration, days: float, **kw):  # type: ignore[no-untyped-def]
    changes, messages = Changes(), []
    trigger = Trigger("test", "corr-1")
    ASSESSOR.assess(record, calibration, b.T0 + timedelta(days=days), trigger, changes, messages, **kw)
    return changes, [parse_envelope(m.value) for m in messages]


def record_of(*events) -> CustomerRecord:  # type: ignore[no-untyped-def]
    facts = CustomerFacts.new(b.CID)
    for e in events:
        facts.apply(e)
    return CustomerRecord(facts)


def test_a_first_order_publishes_the_first_tier_and_activity_with_previous_null() -> None:
    changes, events = assess(record_of(b.placed("o-1", "400", 0)), PROVISIONAL, 1)
    assert [(e.event_type, e.aggregate_version) for e in events] == [
        ("CustomerTierChanged", 1),
        ("CustomerActivityChanged", 2),
    ]
    tier = events[0].data
    assert (tier.previous_tier, tier.new_tier, tier.cut_points["normal"]) == (None, "small", Decimal(500))
    assert "provisional" in tier.reason
    assert [h["kind"] for h in changes.history] == ["tier", "activity"]
    [row] = [segment_row_of(r) for r in changes.segments]
    assert (row["value_tier"], row["orders_count"], row["segmentation_version"]) == ("small", 1, 2)
    assert [dict(zip(ORDER_COLUMNS, o, strict=True))["order_id"] for o in changes.orders] == ["o-1"]


def test_a_registered_customer_without_orders_is_a_prospect_without_events() -> None:
    changes, events = assess(record_of(b.registered()), PROVISIONAL, 1)
    assert events == [] and segment_row_of(changes.segments[0])["value_tier"] == "prospect"


def test_at_a_recalibration_tier_and_rfm_segment_changes_carry_the_frozen_numbers() -> None:
    record = record_of(*(b.placed(f"o-{i}", "300", i) for i in range(5)))
    record.published = Published(tier="small", activity="active", lifecycle="repeat_customer")  # type: ignore[arg-type]
    changes, events = assess(record, CALIBRATED, 6, at_recalibration=True)
    by_type = {e.event_type: e.data for e in events}
    assert by_type["CustomerTierChanged"].new_tier == "vip"  # 1500 ≥ 1000
    assert by_type["CustomerTierChanged"].cut_points == {
        "vip": Decimal(1000),
        "key": Decimal(500),
        "normal": Decimal(100),
    }
    segment = by_type["CustomerRfmSegmentChanged"]
    assert (segment.previous_segment, segment.new_segment, segment.frequency_score) == (None, "champions", 5)
    assert all(h["calibration_id"] == 3 for h in changes.history)
    assert segment_row_of(changes.segments[0])["anchor_tier"] == "vip"


def test_a_high_churn_score_raises_one_alert_and_recovery_clears_it() -> None:
    due = (b.T0 + timedelta(days=30)).date()
    record = record_of(
        b.placed("o-1", "500", 0),
        b.placed("o-2", "500", 10),
        b.placed("o-3", "500", 20),
        b.overdue("o-1", "500", due, 95),
        b.survey("s-1", nps=2, at=b.T0 + timedelta(days=21)),
    )
    record.published = Published(tier="normal", activity="active", churn_score=0, lifecycle="repeat_customer")  # type: ignore[arg-type]
    now_days = 30 + 95
    changes, events = assess(record, PROVISIONAL, now_days)
    raised = [e for e in events if e.event_type == "ChurnRiskRaised"]
    assert len(raised) == 1
    alert_id = alert_id_for(b.CID, b.T0 + timedelta(days=now_days))
    assert raised[0].data.alert_id == alert_id and raised[0].data.score >= 60
    codes = {r.code for r in raised[0].data.reasons}
    assert {"cadence_breach", "detractor_survey", "receivables_overdue_90_plus"} <= codes
    assert changes.alerts[0]["state"] == "open" and changes.alert_log[0]["action"] == "raised"
    assert segment_row_of(changes.segments[0])["overdue_bucket"] == str(OverdueBucket.DAYS_90_PLUS)

    # assessed again while still high: no second alert
    record.published = replace(record.published, churn_score=raised[0].data.score)
    _, again = assess(record, PROVISIONAL, now_days + 1)
    assert not [e for e in again if e.event_type.startswith("ChurnRisk")]

    # paid, a new order and a happy survey: the score falls below 40 and the alert clears itself
    for e in (
        b.paid("o-1", "500", "0"),
        b.placed("o-4", "800", now_days + 1),
        b.survey("s-2", nps=10, at=b.T0 + timedelta(days=now_days + 1)),
    ):
        record.facts.apply(e)
    changes, events = assess(record, PROVISIONAL, now_days + 2)
    cleared = [e.data for e in events if e.event_type == "ChurnRiskCleared"]
    assert len(cleared) == 1 and cleared[0].alert_id == alert_id and "recovered" in cleared[0].reason
    assert changes.alerts[0]["state"] == "closed" and changes.alerts[0]["close_reason"] == "recovered"


@pytest.mark.parametrize(("orders", "text"), [(1, "test: 1 order placed"), (2, "test: 2 orders placed")])
def test_a_lifecycle_change_says_how_many_orders_were_placed_in_words_that_agree(orders: int, text: str) -> None:
    record = record_of(*(b.placed(f"o-{n}", "400", n) for n in range(orders)))
    record.published = Published(lifecycle="prospect")
    changes, _ = assess(record, PROVISIONAL, orders)
    [lifecycle] = [h for h in changes.history if h["kind"] == "lifecycle"]
    assert lifecycle["reason"] == text


def test_a_net_contribution_that_reads_like_a_phone_number_still_makes_a_valid_tier_event() -> None:
    # bare digits 13800007733 look like a Chinese mobile to the contract's personal-data check: the reason
    # was refused and the customer's events dead-lettered (found while making totals unbounded)
    _, events = assess(record_of(b.placed("o-1", "13800007733", 0)), PROVISIONAL, 1)

    tier = events[0].data
    assert "net contribution 13,800,007,733.00 over 365 days" in tier.reason
    assert tier.net_contribution.amount == Decimal("13800007733")
