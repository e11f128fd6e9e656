"""Request and response models of the segmentation read API (its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field

from shared.api import NotBlank, RequestBody
from shared.clock import GivenInstant
from shared.events.envelope import DecimalString, DecimalTotal
from shared.events.personal_data import refuse_personal_data

#: An operator's free text (a close reason, an operator id): surrounding blanks dropped, so a reason of
#: spaces only is a 422 naming the field, like an empty one. Both reach the public ChurnRiskCleared
#: ("closed by <operator>: <reason>", at most the contract's 500 characters), so neither may carry
#: personal data (an e-mail address, a phone number: 422, as the contract's Reason).
OPERATOR_MAX = 100
CLOSE_REASON_MAX = 500 - len("closed by : ") - OPERATOR_MAX
Operator = Annotated[
    str,
    Field(min_length=1, max_length=OPERATOR_MAX),
    NotBlank,
    AfterValidator(str.strip),
    AfterValidator(refuse_personal_data),
]
Reason = Annotated[
    str,
    Field(min_length=1, max_length=CLOSE_REASON_MAX),
    NotBlank,
    AfterValidator(str.strip),
    AfterValidator(refuse_personal_data),
]


class SegmentOut(BaseModel):
    """One customer's segment at a glance (the walking skeleton's shape, plus the grades)."""

    customer_id: str
    registered: bool
    company_name: str | None
    region: str | None
    stage: str | None
    value_tier: str
    orders_count: int
    cancelled_orders: int
    gross_revenue: DecimalTotal
    cancelled_amount: DecimalTotal
    returned_amount: DecimalTotal
    net_revenue: DecimalTotal = Field(description="lifetime orders − cancellations − returns")
    currency: str | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    complaints_total: int
    open_complaints: int
    events_applied: int
    last_event_at: datetime | None
    net_contribution: DecimalTotal = Field(description="trailing-window net contribution (grades the tier)")
    rfm_segment: str | None
    lifecycle_stage: str | None
    activity_status: str | None
    churn_score: int
    churn_band: str
    assessed_at: datetime | None
    updated_at: datetime


class ChurnReasonOut(BaseModel):
    code: str
    points: int
    evidence: dict[str, Any]


class CustomerSummaryOut(BaseModel):
    customer_id: str
    company_name: str | None
    region: str | None
    value_tier: str
    net_contribution: DecimalTotal
    currency: str | None
    rfm_segment: str | None
    r_score: int | None
    f_score: int | None
    m_score: int | None
    recency_days: int | None
    activity_status: str | None
    churn_score: int
    churn_band: str
    alert_id: str | None = Field(description="the customer's live alert (open, acknowledged or snoozed); null if none")
    alert_state: str | None = Field(description="that alert's state: open, acknowledged or snoozed")


class CustomerPage(BaseModel):
    total: int = Field(description="customers matching the filters")
    limit: int
    offset: int
    items: list[CustomerSummaryOut]


class TierOut(BaseModel):
    value_tier: str
    candidate_tier: str | None = Field(description="what the net earns against the cut points before hysteresis")
    net_contribution: DecimalTotal
    currency: str | None
    live_orders: int
    anchor_tier: str | None = Field(description="tier fixed at the last recalibration")
    recalibrations_below: int = Field(description="recalibrations in a row graded below the current tier")
    calibration_id: int | None = Field(description="calibration whose cut points graded it; null = provisional")
    cut_points: dict[str, str] | None


class RfmOut(BaseModel):
    recency_days: int | None
    frequency: int = Field(description="orders in the trailing window")
    monetary: DecimalTotal = Field(description="net amount in the trailing window")
    r_score: int | None
    f_score: int | None
    m_score: int | None
    segment: str | None
    segment_label: str | None


class ActivityOut(BaseModel):
    status: str | None
    reason: str | None
    days_since_last_order: int | None
    median_gap_days: DecimalString | None
    average_order_value: DecimalTotal | None
    spend_last_90: DecimalTotal
    spend_previous_90: DecimalTotal


class ChurnOut(BaseModel):
    score: int
    band: str
    reasons: list[ChurnReasonOut]
    open_complaints: int
    complaints_past_sla: int
    complaints_reopened: int
    latest_csat: int | None
    latest_nps: int | None
    csat_average: DecimalString | None
    nps: DecimalString | None
    overdue_amount: DecimalTotal = Field(description="outstanding on all of the customer's overdue orders")
    overdue_bucket: str | None
    credit_holds: int


class HistoryOut(BaseModel):
    previous: str | None
    new: str | None
    reason: str
    details: dict[str, Any]
    calibration_id: int | None
    occurred_at: datetime
    cause_event_id: str | None


class AlertLogOut(BaseModel):
    action: str
    at: datetime
    actor: str | None
    score: int | None
    detail: dict[str, Any]


class AlertOut(BaseModel):
    alert_id: str
    customer_id: str
    company_name: str | None = None
    value_tier: str | None = None
    state: str
    raised_at: datetime
    raised_score: int
    reasons: list[str] = Field(description="reason codes when raised")
    last_score: int
    last_seen_at: datetime
    occurrences: int
    snoozed_until: datetime | None
    handled_at: datetime | None
    handled_by: str | None
    closed_at: datetime | None
    close_reason: str | None
    current_score: int | None = None
    current_band: str | None = None
    current_reasons: list[ChurnReasonOut] | None = None
    log: list[AlertLogOut] | None = None


class CustomerViewOut(BaseModel):
    """Everything segmentation knows about one customer, with reasons and histories."""

    customer_id: str
    registered: bool
    company_name: str | None
    region: str | None
    stage: str | None
    deactivated: bool
    lifecycle_stage: str | None
    figures: SegmentOut
    tier: TierOut
    rfm: RfmOut
    activity: ActivityOut
    churn: ChurnOut
    alert: AlertOut | None
    history: dict[str, list[HistoryOut]] = Field(
        description="latest first, by kind: tier, rfm_segment, activity, churn_score, lifecycle"
    )
    assessed_at: datetime | None


class AlertPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AlertOut]


class ShareOut(BaseModel):
    key: str | None = Field(description="tier, segment, status or region; null = not graded yet (or no region)")
    customers: int
    customer_share_pct: DecimalString
    revenue: DecimalTotal = Field(description="trailing-window net contribution")
    revenue_share_pct: DecimalTotal = Field(
        description="of the total revenue; beyond 0–100 when some customers' net contribution is negative"
    )


class DistributionsOut(BaseModel):
    customers: int
    revenue: DecimalTotal
    tiers: list[ShareOut]
    segments: list[ShareOut]
    activity: list[ShareOut]
    calibration_id: int | None


class RegionsOut(BaseModel):
    """Customers and revenue share per region, most customers first: the regions a list can filter by."""

    customers: int
    regions: list[ShareOut] = Field(description="key = the region as recorded in the customer file")


class GridCellOut(BaseModel):
    r_score: int = Field(ge=1, le=5)
    f_score: int = Field(ge=1, le=5)
    segment: str = Field(description="the segment owning this cell in the rule table")
    customers: int
    customer_share_pct: DecimalString = Field(description="of the customers with RFM scores")
    revenue: DecimalTotal = Field(description="trailing-window net contribution")
    revenue_share_pct: DecimalTotal = Field(description="of the revenue of the customers with RFM scores")


class SegmentRuleOut(BaseModel):
    code: str
    label: str
    r: list[int]
    f: list[int]


class RfmGridOut(BaseModel):
    """Customers per cell of the 5×5 R×F grid, with the rule table that names the cells."""

    customers: int = Field(description="all customers")
    scored: int = Field(description="customers with R and F scores (the rest have no order in the window)")
    grid_version: str
    segments: list[SegmentRuleOut]
    cells: list[GridCellOut] = Field(description="25 cells, R 5 → 1, then F 1 → 5")


class CallerOut(BaseModel):
    caller: str = Field(description="short, non-reversible id of the token (token:<sha256 prefix>)")
    scopes: list[str]
    can_read: bool
    can_write: bool = Field(description="may act on alerts and recalibrate (segmentation:write)")
    service_time: AwareDatetime = Field(
        description="the service's clock now: what alert times (snooze until, ages) are compared with; a demo "
        "or test clock may be set in the past (SEGMENTATION_CLOCK_START), so clients base time defaults on this"
    )


class AcknowledgeIn(RequestBody):
    by: Operator | None = Field(default=None, description="operator id (default: the token)")


class SnoozeIn(RequestBody):
    until: GivenInstant = Field(description="occurrences are silenced until then (with its UTC offset)")
    by: Operator | None = None


class CloseIn(RequestBody):
    reason: Reason = Field(description="why it is closed (not blank)")
    by: Operator | None = None


class CalibrationIn(RequestBody):
    as_of: GivenInstant | None = Field(
        default=None, description="instant to calibrate at, not in the future; default now"
    )


class ConsumerOffsetOut(BaseModel):
    consumer_group: str | None = Field(default=None, description="the consumer group that stored it")
    topic: str
    partition: int
    next_offset: int = Field(description="the next offset to read: every record before it had been applied")


class CalibrationOut(BaseModel):
    id: int
    effective_at: datetime
    trigger: str
    mode: str
    cut_points: dict[str, str]
    rfm_breakpoints: dict[str, list[str]] | None
    population: int
    policy_version: str
    rfm_grid_version: str
    consumer_offsets: list[ConsumerOffsetOut] = Field(
        description="where the consumer stood when the calibration was recorded: the input everyone was "
        "re-graded on (what a rebuild replays up to before applying it)"
    )
    measured_offsets: list[ConsumerOffsetOut] | None = Field(
        description="the input the cut points and breakpoints were measured from (at or before "
        "consumer_offsets); null for calibrations recorded before it was kept (migration 0005), which "
        "measured at consumer_offsets"
    )
    customers_graded: int
    tier_changes: int
    recorded_at: datetime
