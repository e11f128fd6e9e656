"""Contract events of the live segmentation, published by ``segmentation`` on ``crm.segmentation.v1``.

Each event states a change of one per-customer projection: the previous value (null for a customer's
first), the new value, and why — including the evidence and the policy or rule-table version used, so a
reader can reproduce the decision and a replay with the same clock yields the same events.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events import topics
from shared.events.envelope import DecimalTotal, EventPayload, MoneyTotal
from shared.events.registry import event
from shared.events.vocabulary import (
    ActivityStatus,
    Code,
    Identifier,
    Reason,
    RiskBand,
    ValueTier,
)

TOPIC = topics.SEGMENTATION
PRODUCER = "segmentation"

#: A value in a churn signal's evidence: text, integer, boolean or null. Ratios and amounts travel as
#: decimal strings, never floats, like all numbers with a fraction in the contract; an amount there may be
#: a total (a customer's spend over 90 days, overdue per bucket), so its size is not bounded.
EvidenceValue = str | int | bool | None


def _distinct(previous: object, new: object, what: str) -> None:
    if previous == new:
        raise ValueError(f"{what} did not change ({new})")


@event
class CustomerTierChanged(EventPayload):
    """The customer's value tier (客户分级) changed, graded on trailing-12-month net contribution."""

    event_type: ClassVar[str] = "CustomerTierChanged"
    schema_version: ClassVar[int] = 1

    previous_tier: ValueTier | None = Field(
        description='tier before: "prospect" for a known customer\'s first tier (customers start untiered); null '
        "only when the event that tiers a customer is the first the segmentation service read of it (e.g. an "
        "order read before the registration)"
    )
    new_tier: ValueTier = Field(description="tier after")
    reason: Reason = Field(description="why it changed, e.g. the event or recalibration that moved it")
    net_contribution: MoneyTotal = Field(
        description="orders − cancellations − returns over the window (may be < 0); a total, not bounded like "
        "one amount"
    )
    cut_points: dict[ValueTier, DecimalTotal] = Field(
        description="tier → lower bound of net contribution in force when graded (frozen between recalibrations); "
        "totals, not bounded like one amount"
    )
    policy_version: str = Field(min_length=1, max_length=64, description="version of the tier policy that graded it")

    @model_validator(mode="after")
    def _changed(self) -> Self:
        _distinct(self.previous_tier, self.new_tier, "tier")
        return self


@event
class CustomerRfmSegmentChanged(EventPayload):
    """The customer's RFM segment changed; scores are quintiles frozen at the last recalibration."""

    event_type: ClassVar[str] = "CustomerRfmSegmentChanged"
    schema_version: ClassVar[int] = 1

    previous_segment: Code | None = Field(description="segment before; null for the customer's first")
    new_segment: Code = Field(description='segment after, a key of the rule table, e.g. "champions", "at_risk"')
    recency_score: int = Field(ge=1, le=5, description="R score, 5 = most recent")
    frequency_score: int = Field(ge=1, le=5, description="F score, 5 = most orders")
    monetary_score: int = Field(ge=1, le=5, description="M score, 5 = highest net amount")
    recency_days: int | None = Field(default=None, ge=0, description="days since the last order (evidence for R)")
    order_count: int | None = Field(default=None, ge=0, description="number of orders (evidence for F)")
    net_amount: MoneyTotal | None = Field(
        default=None, description="net amount over the window (evidence for M); a total, not bounded like one amount"
    )
    rule_table_version: str = Field(
        min_length=1, max_length=64, description="version of the segment rule table applied"
    )

    @model_validator(mode="after")
    def _changed(self) -> Self:
        _distinct(self.previous_segment, self.new_segment, "segment")
        return self


@event
class CustomerActivityChanged(EventPayload):
    """The customer's activity status changed (active → at_risk → dormant → lost, or reactivated)."""

    event_type: ClassVar[str] = "CustomerActivityChanged"
    schema_version: ClassVar[int] = 1

    previous_status: ActivityStatus | None = Field(description="status before; null for the customer's first")
    new_status: ActivityStatus = Field(description="status after")
    days_since_last_order: int | None = Field(ge=0, description="days since the last order; null without orders")
    reason: Reason = Field(description="the rule that fired, with its threshold")

    @model_validator(mode="after")
    def _changed(self) -> Self:
        _distinct(self.previous_status, self.new_status, "activity status")
        return self


class ChurnReason(BaseModel):
    """One signal that contributed to a churn-risk score."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: Code = Field(
        description="signal code, e.g. cadence_breach, spend_down, complaint_overdue, complaint_reopened, "
        "detractor_survey, receivables_overdue_1_30 … receivables_overdue_90_plus, credit_hold"
    )
    points: int = Field(ge=0, le=100, description="points the signal adds to the score")
    evidence: dict[str, EvidenceValue] = Field(default_factory=dict, description="the facts behind the signal")


class _ChurnRisk(EventPayload):
    """Fields common to churn-risk alert events (not an event itself)."""

    alert_id: Identifier = Field(description="id of the alert; one open alert per customer at most")
    score: int = Field(ge=0, le=100, description="churn-risk score, 0 (safe) to 100")
    band: RiskBand = Field(description="band of the score")
    previous_score: int | None = Field(default=None, ge=0, le=100, description="score before, if known")


@event
class ChurnRiskRaised(_ChurnRisk):
    """The churn-risk score reached the alert band: an alert opened. Repeats while open are not re-raised."""

    event_type: ClassVar[str] = "ChurnRiskRaised"
    schema_version: ClassVar[int] = 1

    reasons: list[ChurnReason] = Field(min_length=1, description="the signals behind the score")


@event
class ChurnRiskCleared(_ChurnRisk):
    """The churn-risk alert closed: the score fell below the clearing threshold, or it was closed by hand."""

    event_type: ClassVar[str] = "ChurnRiskCleared"
    schema_version: ClassVar[int] = 1

    reason: Reason = Field(description="why it cleared")
