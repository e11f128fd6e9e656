"""Grading one customer: provisional absolute tiers, recalibration anchors, path independence, RFM."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
import segmentation_builders as b
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.domain.cutpoints import CutPoints
from segmentation.domain.grading import Calibration, Standing, grade
from segmentation.domain.measures import measure
from segmentation.domain.policy import Policy, TierMode
from segmentation.domain.rfm import RfmBreakpoints
from shared.events.vocabulary import ActivityStatus, ValueTier

pytestmark = pytest.mark.unit

POLICY = Policy()
NOW = b.T0 + timedelta(days=30)
CUTS = CutPoints(mode=TierMode.PERCENTILE, vip=Decimal(1000), key=Decimal(500), normal=Decimal(100), population=20)
BREAKPOINTS = RfmBreakpoints(
    recency=(60, 30, 15, 5),
    frequency=((1, Decimal(0)), (2, Decimal(0)), (3, Decimal(0)), (5, Decimal(0))),
    monetary=(Decimal(50), Decimal(100), Decimal(500), Decimal(1000)),
    population=20,
)
CALIBRATED = Calibration(7, b.T0, CUTS, BREAKPOINTS, "default-v1")


def grades_for(amounts: list[int], standing: Standing = Standing(), calibration: Calibration = CALIBRATED, **kw):  # type: ignore[no-untyped-def]
    facts = b.fold([b.placed(f"o-{i}", str(a), i) for i, a in enumerate(amounts)])
    return grade(measure(facts, NOW, POLICY), standing, calibration, POLICY, None, **kw)


def test_before_the_first_recalibration_the_absolute_thresholds_grade_and_rfm_is_unscored() -> None:
    g = grades_for([400, 700], calibration=Calibration.provisional(POLICY))
    assert (g.tier, g.rfm, g.segment) == (ValueTier.NORMAL, None, None)  # 1100 ≥ 500 (absolute normal)
    assert (
        grade(measure(b.fold([b.registered()]), NOW, POLICY), Standing(), CALIBRATED, POLICY, None).tier == "prospect"
    )


def test_rfm_scores_against_frozen_breakpoints_and_the_segment_comes_from_the_grid() -> None:
    g = grades_for([300, 300, 300, 300, 300])  # 5 orders, net 1500, last order 26 days ago
    assert (g.rfm.r, g.rfm.f, g.rfm.m) == (3, 5, 5)  # type: ignore[union-attr]
    assert g.segment == "loyal"


def test_promotion_above_the_anchor_is_immediate_and_demotion_below_it_needs_the_margin() -> None:
    anchored_key = Standing(tier=ValueTier.KEY, anchor_tier=ValueTier.KEY)
    assert grades_for([1200], anchored_key).tier == ValueTier.VIP
    assert grades_for([460], anchored_key).tier == ValueTier.KEY  # 460 ≥ 500 − 10 %: held
    held = grades_for([460], anchored_key)
    assert (held.candidate_tier, held.tier_below) == (ValueTier.NORMAL, 0)
    assert grades_for([440], anchored_key).tier == ValueTier.NORMAL  # through the margin


def test_two_recalibrations_in_a_row_below_the_tier_demote_it() -> None:
    key = Standing(tier=ValueTier.KEY, anchor_tier=ValueTier.KEY)
    first = grades_for([460], key, at_recalibration=True)
    assert (first.tier, first.anchor_tier, first.anchor_below) == (ValueTier.KEY, ValueTier.KEY, 1)
    second = grades_for([460], first.standing, at_recalibration=True)
    assert (second.tier, second.anchor_below) == (ValueTier.NORMAL, 0)


def test_the_first_recalibration_grades_afresh_without_hysteresis() -> None:
    provisional_vip = Standing(tier=ValueTier.VIP)
    g = grades_for([460], provisional_vip, at_recalibration=True, first_recalibration=True)
    assert (g.tier, g.anchor_tier) == (ValueTier.NORMAL, ValueTier.NORMAL)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=1500), min_size=1, max_size=6), st.randoms())
def test_between_recalibrations_the_tier_depends_on_the_facts_not_the_path(amounts: list[int], rnd) -> None:  # type: ignore[no-untyped-def]
    """Folding the same events in any order and grading after any prefix ends in the same tier."""
    anchor = Standing(tier=ValueTier.KEY, anchor_tier=ValueTier.KEY)
    events = [b.placed(f"o-{i}", str(a), i) for i, a in enumerate(amounts)]
    reference = grade(measure(b.fold(events), NOW, POLICY), anchor, CALIBRATED, POLICY, None)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    facts = b.fold([])
    standing = anchor
    for envelope in shuffled:
        facts.apply(envelope)
        standing = grade(measure(facts, NOW, POLICY), standing, CALIBRATED, POLICY, None).standing
    assert standing.tier == reference.tier


def test_activity_lifecycle_and_churn_come_with_the_grades() -> None:
    g = grades_for([100, 100, 100])  # daily orders, then 28 days of silence
    assert g.activity is not None and g.activity.status == ActivityStatus.AT_RISK
    assert g.lifecycle == "repeat_customer"
    assert (g.churn.score, [r.code for r in g.churn.reasons]) == (25, ["cadence_breach"])


@pytest.mark.parametrize("stage", ["prospect", "lead"])
def test_lifecycle_before_the_first_order_follows_the_sales_stage(stage: str) -> None:
    facts = b.fold([b.registered(stage=stage)])
    assert grade(measure(facts, NOW, POLICY), Standing(), CALIBRATED, POLICY, stage).lifecycle == stage


def test_cross_topic_interleavings_grade_identically() -> None:
    topics = [[b.registered()], [b.placed("o-1", "700", 0), b.returned("o-1", "300")], [b.complaint("k-1")]]
    results = set()
    for order in itertools.permutations(range(3)):
        facts = b.fold([e for i in order for e in topics[i]])
        g = grade(measure(facts, NOW, POLICY), Standing(), CALIBRATED, POLICY, None)
        results.add((g.tier, g.segment, g.churn.score, g.lifecycle))
    assert len(results) == 1
