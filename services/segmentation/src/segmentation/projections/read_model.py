"""The segmentation tables: SQL-readable by dashboards and analysts, written only by this service.

* ``customer_segments`` — one row per customer: profile, lifetime figures, and every grade with its
  evidence (tier + hysteresis state, RFM, lifecycle, activity, churn score and reasons) as of ``assessed_at``;
* ``customer_orders`` / ``customer_complaints`` / ``customer_surveys`` — the facts the grades are
  computed from (one row per order, complaint, survey answer);
* ``calibrations`` — every recalibration: when it took effect, the cut points and RFM breakpoints it froze,
  the policy version, and the consumer offsets it saw (so a rebuild applies it at the same point);
* ``segment_history`` — every change of tier, RFM segment, activity, churn score and lifecycle: previous →
  new, reason, and details (cut points or breakpoints used, scores);
* ``churn_alerts`` (at most one live alert per customer, a partial unique index) and ``alert_log`` (raises,
  occurrences, operator actions, clearances — each with its time and actor).

The migrations (``migrations/versions/0004_segmentation_engine.py`` and the revisions after it) are the
frozen DDL; these objects are the current shape used by queries.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

metadata = MetaData()

#: One amount of one fact (an order's amount, its cancellation, its overdue amount): what the contract's
#: decimal string bounds an amount to.
Money = Numeric(18, 4)
#: A sum of amounts, or a figure derived from sums (lifetime revenue, net contribution, spend windows, an
#: average): unbounded by what one amount may be (revision 0008). PostgreSQL's widest precision with a fixed
#: scale — 996 digits before the point — so stored values keep 4 places, as the amounts they add up.
Total = Numeric(1000, 4)

customer_segments = Table(
    "customer_segments",
    metadata,
    Column("customer_id", Text, primary_key=True),
    # profile
    Column("registered", Boolean, nullable=False),
    Column("company_name", Text),
    Column("region", Text),
    Column("stage", Text),
    Column("deactivated", Boolean, nullable=False),
    # customer-stream versions of the events that set the company name, region, deactivated (revision 0009)
    Column("company_name_version", Integer, nullable=False, server_default="0"),
    Column("region_version", Integer, nullable=False, server_default="0"),
    Column("deactivated_version", Integer, nullable=False, server_default="0"),
    # lifetime figures
    Column("orders_count", Integer, nullable=False),
    Column("cancelled_orders", Integer, nullable=False),
    Column("gross_revenue", Total, nullable=False),
    Column("cancelled_amount", Total, nullable=False),
    Column("returned_amount", Total, nullable=False),
    Column("net_revenue", Total, nullable=False),
    Column("currency", Text),
    Column("first_order_at", DateTime(timezone=True)),
    Column("last_order_at", DateTime(timezone=True)),
    Column("complaints_total", Integer, nullable=False),
    Column("open_complaints", Integer, nullable=False),
    Column("events_applied", Integer, nullable=False),
    Column("last_event_at", DateTime(timezone=True)),
    Column("segmentation_version", Integer, nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    # tier
    Column("value_tier", Text, nullable=False),
    Column("candidate_tier", Text),
    Column("tier_below", Integer, nullable=False),
    Column("anchor_tier", Text),
    Column("anchor_below", Integer, nullable=False),
    Column("calibration_id", BigInteger),
    Column("net_contribution", Total, nullable=False),
    Column("live_orders", Integer, nullable=False),
    # RFM
    Column("window_orders", Integer, nullable=False),
    Column("recency_days", Integer),
    Column("r_score", Integer),
    Column("f_score", Integer),
    Column("m_score", Integer),
    Column("rfm_segment", Text),
    # cadence, lifecycle, activity
    Column("lifecycle_stage", Text),
    Column("median_gap_days", Numeric(10, 1)),
    Column("average_order_value", Total),
    Column("spend_last_90", Total, nullable=False),
    Column("spend_previous_90", Total, nullable=False),
    Column("activity_status", Text),
    Column("activity_reason", Text),
    # churn risk
    Column("churn_score", Integer, nullable=False),
    Column("churn_band", Text, nullable=False),
    Column("churn_reasons", JSONB, nullable=False),
    Column("complaints_past_sla", Integer, nullable=False),
    Column("complaints_reopened", Integer, nullable=False),
    Column("latest_csat", Integer),
    Column("latest_nps", Integer),
    Column("csat_average", Numeric(4, 2)),
    Column("nps", Numeric(5, 1)),
    Column("overdue_amount", Total, nullable=False),
    Column("overdue_bucket", Text),
    Column("credit_holds", Integer, nullable=False),
    Column("alert_id", Text),
    Column("facts_token", UUID(as_uuid=True)),
    Column("assessed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

customer_orders = Table(
    "customer_orders",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("order_id", Text, nullable=False),
    Column("placed_at", DateTime(timezone=True)),
    Column("amount", Money, nullable=False),
    Column("currency", Text),
    Column("cancelled", Boolean, nullable=False),
    Column("cancelled_amount", Money, nullable=False),
    Column("returned_amount", Total, nullable=False),  # the sum of the order's returns (revision 0008)
    Column("credit_held", Boolean, nullable=False),
    Column("due_date", Date),
    Column("overdue_amount", Money, nullable=False),
    Column("paid_in_full", Boolean, nullable=False),
    # order-stream versions of the events that set credit_held / the outstanding amount (revision 0009)
    Column("credit_version", Integer, nullable=False, server_default="0"),
    Column("outstanding_amount", Money),
    Column("receivable_version", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("customer_id", "order_id"),
)

customer_complaints = Table(
    "customer_complaints",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("complaint_id", Text, nullable=False),
    Column("filed_at", DateTime(timezone=True)),
    Column("category", Text),
    Column("severity", Text),
    Column("acknowledge_by", DateTime(timezone=True)),
    Column("resolve_by", DateTime(timezone=True)),
    Column("status", Text, nullable=False),
    Column("acknowledged", Boolean, nullable=False),
    Column("escalated", Boolean, nullable=False),
    Column("reopened_count", Integer, nullable=False),
    Column("status_version", Integer, nullable=False, server_default="0"),  # revision 0009
    PrimaryKeyConstraint("customer_id", "complaint_id"),
)

customer_surveys = Table(
    "customer_surveys",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("survey_id", Text, nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=False),
    Column("csat", Integer),
    Column("nps", Integer),
    PrimaryKeyConstraint("customer_id", "survey_id"),
)

calibrations = Table(
    "calibrations",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("effective_at", DateTime(timezone=True), nullable=False),
    Column("trigger", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("cut_points", JSONB, nullable=False),
    Column("rfm_breakpoints", JSONB),
    Column("population", Integer, nullable=False),
    Column("policy_version", Text, nullable=False),
    Column("rfm_grid_version", Text, nullable=False),
    Column("consumer_offsets", JSONB, nullable=False),
    # revision 0005: the snapshot the numbers came from (NULL: the same as consumer_offsets)
    Column("measured_offsets", JSONB(none_as_null=True)),
    Column("customers_graded", Integer, nullable=False),
    Column("tier_changes", Integer, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

segment_history = Table(
    "segment_history",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("previous", Text),
    Column("new", Text),
    Column("reason", Text, nullable=False),
    Column("details", JSONB, nullable=False),
    Column("calibration_id", BigInteger),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("cause_event_id", UUID(as_uuid=True)),
)

churn_alerts = Table(
    "churn_alerts",
    metadata,
    Column("alert_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("raised_score", Integer, nullable=False),
    Column("reasons", JSONB, nullable=False),
    Column("last_score", Integer, nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("occurrences", Integer, nullable=False),
    Column("snoozed_until", DateTime(timezone=True)),
    Column("handled_at", DateTime(timezone=True)),
    Column("handled_by", Text),
    Column("closed_at", DateTime(timezone=True)),
    Column("close_reason", Text),
    Column("rearmed", Boolean, nullable=False),
)

alert_log = Table(
    "alert_log",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("alert_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text),
    Column("score", Integer),
    Column("detail", JSONB, nullable=False),
    # revision 0006: operator actions only, where the input streams stood (what a rebuild replays up to)
    Column("consumer_offsets", JSONB),
)

#: Tables a rebuild recreates and compares (history and logs record *when* things were noticed, which
#: depends on how events were batched, so they are not part of the comparison).
PROJECTION_TABLES = (customer_segments, customer_orders, customer_complaints, customer_surveys)


async def get_view(conn: AsyncConnection, customer_id: str) -> dict[str, object] | None:
    """One customer's row of ``customer_segments`` as a mapping, or None."""
    query = select(customer_segments).where(customer_segments.c.customer_id == customer_id)
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None
