"""One customer's grades — value tier, RFM, lifecycle, activity, churn risk — from measures. Pure.

Everything here is a function of (measures as of an instant, the calibration in force, what the customer's
standing was fixed to at the last recalibration, the policy). In particular the tier between two
recalibrations does **not** depend on the path the events took:

* at a recalibration the tier is graded with hysteresis against the customer's current tier
  (``apply_hysteresis(at_recalibration=True)``) and the result becomes the customer's *anchor*
  (tier + hysteresis state);
* between recalibrations (live events, the sweep) the tier is ``apply_hysteresis(anchor, grade(net))``
  against the frozen cut points: promotions above the anchor apply at once, a demotion below the anchor
  needs the net to fall through the margin. Because it depends on the anchor, not on the previous live
  tier, any batching or interleaving of the same events gives the same tier, and a rebuild that replays
  the recorded recalibrations at the same points reproduces it.

The first recalibration with a population grades everyone afresh (no hysteresis): tiers before it are
provisional, graded against the absolute stand-in thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from segmentation.domain import activity, churn, cutpoints, rfm
from segmentation.domain.activity import ActivityAssessment, LifecycleStage
from segmentation.domain.cutpoints import CutPoints, HysteresisState
from segmentation.domain.measures import Measures
from segmentation.domain.policy import Policy
from segmentation.domain.rfm import RfmBreakpoints, RfmObservation, RfmScores
from shared.events.vocabulary import ValueTier


@dataclass(frozen=True)
class Calibration:
    """The frozen numbers in force: the latest recalibration's cut points and RFM breakpoints."""

    id: int | None  # None: no recalibration yet (provisional absolute thresholds, RFM unscored)
    effective_at: datetime | None
    cut_points: CutPoints
    breakpoints: RfmBreakpoints | None
    policy_version: str

    @classmethod
    def provisional(cls, policy: Policy) -> Calibration:
        return cls(None, None, cutpoints.absolute_cut_points(policy.tier), None, policy.version)


@dataclass(frozen=True)
class Standing:
    """What grading remembers about a customer between assessments (stored with the customer)."""

    tier: ValueTier | None = None  # current tier; None before the first grading
    tier_below: int = 0  # hysteresis state of the current tier
    anchor_tier: ValueTier | None = None  # tier fixed at the last recalibration
    anchor_below: int = 0  # hysteresis state fixed at the last recalibration
    lifecycle: LifecycleStage | None = None


@dataclass(frozen=True)
class Grades:
    measures: Measures
    candidate_tier: ValueTier  # what the net earns against the cut points, before hysteresis
    tier: ValueTier
    tier_below: int
    anchor_tier: ValueTier | None
    anchor_below: int
    rfm: RfmScores | None
    segment: str | None
    lifecycle: LifecycleStage
    activity: ActivityAssessment | None
    churn: churn.ChurnAssessment

    @property
    def standing(self) -> Standing:
        return Standing(self.tier, self.tier_below, self.anchor_tier, self.anchor_below, self.lifecycle)


def rfm_observation(m: Measures) -> RfmObservation | None:
    """The customer's RFM measures, or None when they have never purchased (not ranked)."""
    if m.live_orders == 0 or m.recency_days is None:
        return None
    return RfmObservation(recency_days=m.recency_days, frequency=m.window_orders, monetary=m.window_net)


def grade(
    m: Measures,
    standing: Standing,
    calibration: Calibration,
    policy: Policy,
    sales_stage: str | None,
    *,
    at_recalibration: bool = False,
    first_recalibration: bool = False,
) -> Grades:
    """All grades of one customer as of ``m.as_of``."""
    cuts = calibration.cut_points
    candidate = cutpoints.grade(m.window_net, m.live_orders, cuts)
    hysteresis = policy.tier.hysteresis
    anchor_tier: ValueTier | None
    if at_recalibration:
        previous = None if first_recalibration else standing.tier
        tier, state = cutpoints.apply_hysteresis(
            previous,
            candidate,
            m.window_net,
            cuts,
            hysteresis,
            HysteresisState(standing.tier_below),
            at_recalibration=True,
        )
        anchor_tier, anchor_below = tier, state.recalibrations_below
    else:
        anchor_tier, anchor_below = standing.anchor_tier, standing.anchor_below
        tier, state = cutpoints.apply_hysteresis(
            anchor_tier, candidate, m.window_net, cuts, hysteresis, HysteresisState(anchor_below)
        )
    scores = segment = None
    observation = rfm_observation(m)
    if calibration.breakpoints is not None and observation is not None:
        scores = rfm.score(
            observation.recency_days, observation.frequency, observation.monetary, calibration.breakpoints
        )
        segment = rfm.segment(scores.r, scores.f, policy.rfm)
    # The purchase days and their cadence thresholds, once for the activity status and the churn signals.
    days = m.purchase_days
    limits = activity.thresholds_of_days(days, policy.activity, m.median_gap_days) if days else None
    return Grades(
        measures=m,
        candidate_tier=candidate,
        tier=tier,
        tier_below=state.recalibrations_below,
        anchor_tier=anchor_tier,
        anchor_below=anchor_below,
        rfm=scores,
        segment=segment,
        lifecycle=activity.lifecycle_stage(standing.lifecycle, sales_stage, m.orders_placed),
        activity=activity.assess_activity_of_days(days, m.as_of, policy.activity, limits),
        churn=churn.score(signals(m, policy, limits), policy.churn),
    )


def signals(m: Measures, policy: Policy, limits: activity.CadenceThresholds | None = None) -> churn.Signals:
    """The churn signals of ``m``; ``limits``: the cadence thresholds of its purchase days, if known."""
    if limits is None:
        days = m.purchase_days
        limits = activity.thresholds_of_days(days, policy.activity, m.median_gap_days) if days else None
    return churn.Signals(
        days_since_last_order=m.recency_days,
        cadence_threshold_days=None if limits is None else limits.at_risk_days,
        spend_last_90=m.spend_last,
        spend_previous_90=m.spend_previous,
        complaints_past_sla=m.complaints_past_sla,
        complaints_reopened=m.complaints_reopened,
        latest_nps=m.latest_nps,
        latest_csat=m.latest_csat,
        overdue=m.overdue,
        credit_holds=m.credit_holds,
    )
