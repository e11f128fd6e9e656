"""Assess one customer as of an instant and turn what changed into rows, history and events.

The same code runs for a batch of live events, the scheduled sweep and a recalibration: measure the
facts (pure), grade them (pure), compare with what was last published, and collect the effects —
the new ``customer_segments`` row, history rows (previous → new, reason, what it was graded with),
churn-alert changes and the contract events for segmentation's outbox. :class:`Assessor` does no I/O; the
caller writes the collected :class:`~segmentation.projections.store.Changes` in its transaction, or lets
:func:`assess_in_parts` assess many customers part by part and stream each part's writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from segmentation.application import public_events
from segmentation.domain import churn
from segmentation.domain.churn import AlertTransition
from segmentation.domain.grading import Calibration, Grades, grade
from segmentation.domain.measures import measure
from segmentation.domain.policy import Policy
from segmentation.projections.rows import segment_row
from segmentation.projections.store import Changes, ChangeStream, CustomerRecord, alert_row, driver, fact_rows
from shared.events.envelope import Envelope, EventPayload
from shared.events.vocabulary import ValueTier
from shared.messaging.outbox import OutboxMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

_ALERT_IDS = uuid.UUID("5e6a1e27-0000-4000-8000-000000000001")


@dataclass(frozen=True)
class Trigger:
    """Why a customer is being assessed: for reasons, correlation and causation of what it emits."""

    label: str  # "OrderPlaced", "sweep", "recalibration #3", …
    correlation_id: str
    cause: Envelope | None = None

    @classmethod
    def event(cls, envelope: Envelope) -> Trigger:
        return cls(envelope.event_type, envelope.correlation_id, envelope)

    @property
    def cause_id(self) -> uuid.UUID | None:
        return None if self.cause is None else self.cause.event_id


def _amount(value: Decimal) -> str:
    """An amount in a reason a person reads: grouped thousands, two decimals ("13,800,007,733.00"). Never the
    bare digits: the contract refuses reasons holding what looks like a phone number, and a net contribution
    of 13800007733 does (the poll's events were dead-lettered)."""
    return f"{value:,.2f}"


def alert_id_for(customer_id: str, raised_at: datetime) -> str:
    """Deterministic, so a rebuild that raises the same alert at the same instant names it the same."""
    return "al-" + uuid.uuid5(_ALERT_IDS, f"{customer_id}|{raised_at.isoformat()}").hex[:24]


class Assessor:
    def __init__(self, policy: Policy, topic: str) -> None:
        self.policy = policy
        self.topic = topic

    def assess(
        self,
        record: CustomerRecord,
        calibration: Calibration,
        now: datetime,
        trigger: Trigger,
        changes: Changes,
        messages: list[OutboxMessage],
        *,
        at_recalibration: bool = False,
        first_recalibration: bool = False,
    ) -> Grades:
        facts = record.facts
        g = grade(
            measure(facts, now, self.policy),
            record.standing,
            calibration,
            self.policy,
            facts.profile.sales_stage,
            at_recalibration=at_recalibration,
            first_recalibration=first_recalibration,
        )
        run = _Run(self, record, g, calibration, now, trigger, changes, messages)
        run.tier()
        run.segment()
        run.activity()
        run.lifecycle()
        run.churn()
        if record.first_seen_at is None:
            record.first_seen_at = now
        changes.segments.append(segment_row(record, g, calibration))
        orders, complaints, surveys = fact_rows(facts)
        changes.orders.extend(orders)
        changes.complaints.extend(complaints)
        changes.surveys.extend(surveys)
        return g


async def assess_in_parts(
    conn: AsyncConnection,
    assessor: Assessor,
    records: Sequence[CustomerRecord],
    calibration: Calibration,
    now: datetime,
    trigger_of: Callable[[CustomerRecord], Trigger],
    *,
    part: int,
) -> list[OutboxMessage]:
    """Assess ``records`` in order, ``part`` customers at a time, each part's writes sent while the next part
    is assessed (:class:`~segmentation.projections.store.ChangeStream`); the contract events staged.

    Runs in ``conn``'s transaction (begun by a statement through SQLAlchemy). If an assessment or a write
    fails, the part in flight is let end and the error propagates: the caller's transaction rolls back. A
    part's rows are dropped once written, so memory holds at most two parts of rows, whatever the count."""
    messages: list[OutboxMessage] = []
    stream = ChangeStream(await driver(conn))
    try:
        for start in range(0, len(records), part):
            changes = Changes()
            for record in records[start : start + part]:
                assessor.assess(record, calibration, now, trigger_of(record), changes, messages)
            await stream.send(changes)
        await stream.close()
    except BaseException:
        await stream.abandon()
        raise
    return messages


@dataclass
class _Run:
    """One assessment's comparison of new grades with the published ones."""

    owner: Assessor
    record: CustomerRecord
    g: Grades
    calibration: Calibration
    now: datetime
    trigger: Trigger
    changes: Changes
    messages: list[OutboxMessage]

    @property
    def currency(self) -> str | None:
        return self.record.facts.currency

    def emit(self, payload: EventPayload) -> None:
        self.record.version += 1
        self.messages.append(
            public_events.message(
                payload,
                topic=self.owner.topic,
                customer_id=self.record.customer_id,
                version=self.record.version,
                at=self.now,
                correlation_id=self.trigger.correlation_id,
                causation_id=None if self.trigger.cause is None else str(self.trigger.cause.event_id),
            )
        )

    def history(self, kind: str, previous: str | None, new: str | None, reason: str, details: dict[str, Any]) -> None:
        self.changes.history.append(
            {
                "customer_id": self.record.customer_id,
                "kind": kind,
                "previous": previous,
                "new": new,
                "reason": reason,
                "details": details,
                "calibration_id": self.calibration.id,
                "occurred_at": self.now,
                "cause_event_id": self.trigger.cause_id,
            }
        )

    def tier(self) -> None:
        previous, new = self.record.published.tier, self.g.tier
        if new == (previous or ValueTier.PROSPECT):
            return
        reason = self.tier_reason()
        details = {
            "net_contribution": str(self.g.measures.window_net),
            "candidate": str(self.g.candidate_tier),
            "cut_points": {str(k): v for k, v in self.calibration.cut_points.as_dict().items()},
            "policy_version": self.calibration.policy_version,
        }
        self.history("tier", previous, new, reason, details)
        self.emit(public_events.tier_changed(previous, self.g, self.calibration, self.currency, reason))

    def tier_reason(self) -> str:
        m, g, cuts = self.g.measures, self.g, self.calibration.cut_points
        if m.live_orders == 0:
            return f"{self.trigger.label}: no live orders"
        source = (
            "provisional absolute thresholds" if self.calibration.id is None else f"calibration #{self.calibration.id}"
        )
        reason = (
            f"{self.trigger.label}: net contribution {_amount(m.window_net)} over {self.owner.policy.tier.window_days} "
            f"days grades {g.candidate_tier} against {source} (vip ≥ {_amount(cuts.vip)}, key ≥ {_amount(cuts.key)}, "
            f"normal ≥ {_amount(cuts.normal)})"
        )
        if g.tier != g.candidate_tier:
            reason += f"; demotion held at {g.tier} by hysteresis"
        return reason

    def segment(self) -> None:
        previous, new = self.record.published.segment, self.g.segment
        if new == previous:
            return
        scores = self.g.rfm
        m = self.g.measures
        reason = f"{self.trigger.label}: no RFM scores (no purchases)"
        if scores is not None:
            reason = (
                f"{self.trigger.label}: R{scores.r} F{scores.f} M{scores.m} "
                f"(recency {m.recency_days} d, {m.window_orders} orders, net {m.window_net}) → {new}"
            )
        details = {
            "scores": None if scores is None else {"r": scores.r, "f": scores.f, "m": scores.m},
            "breakpoints": None if self.calibration.breakpoints is None else self.calibration.breakpoints.as_dict(),
            "rule_table_version": self.owner.policy.rfm.grid_version,
        }
        self.history("rfm_segment", previous, new, reason, details)
        if new is not None:
            self.emit(public_events.segment_changed(previous, self.g, self.currency, self.owner.policy))

    def activity(self) -> None:
        previous = self.record.published.activity
        new = None if self.g.activity is None else str(self.g.activity.status)
        if new == previous:
            return
        reason = self.g.activity.reason if self.g.activity is not None else "no purchases"
        details = {"days_since_last_order": self.g.measures.recency_days}
        self.history("activity", previous, new, f"{self.trigger.label}: {reason}", details)
        if self.g.activity is not None:
            self.emit(public_events.activity_changed(previous, self.g))

    def lifecycle(self) -> None:
        previous, new = self.record.published.lifecycle, str(self.g.lifecycle)
        if previous is not None and new != previous:
            placed = self.g.measures.orders_placed
            reason = f"{self.trigger.label}: {placed} order{'' if placed == 1 else 's'} placed"
            self.history("lifecycle", previous, new, reason, {"orders_placed": self.g.measures.orders_placed})

    def churn(self) -> None:
        record, assessment, policy = self.record, self.g.churn, self.owner.policy.churn
        stored = record.published.tier is not None
        previous_score = record.published.churn_score if stored else None
        if assessment.score != (previous_score or 0):
            reasons = [{"code": r.code, "points": r.points, "evidence": dict(r.evidence)} for r in assessment.reasons]
            self.history(
                "churn_score",
                None if previous_score is None else str(previous_score),
                str(assessment.score),
                f"{self.trigger.label}: score {assessment.score} ({assessment.band})",
                {"band": str(assessment.band), "reasons": reasons},
            )
        before = record.alert
        alert, transition = churn.next_alert(before, assessment, self.now, policy)
        if alert is None or alert == before:
            return
        if transition is AlertTransition.RAISED:
            record.alert_id = alert_id_for(record.customer_id, self.now)
            self.emit(public_events.risk_raised(record.alert_id, assessment, previous_score))
        assert record.alert_id is not None
        if transition is AlertTransition.CLEARED:
            reason = f"recovered: score {assessment.score} fell below {policy.alert_clear_below}"
            self.emit(
                public_events.risk_cleared(record.alert_id, assessment.score, assessment.band, previous_score, reason)
            )
        record.alert = alert
        self.changes.alerts.append(alert_row(record.alert_id, record.customer_id, alert))
        if transition is not AlertTransition.NONE:
            self.changes.alert_log.append(
                {
                    "alert_id": record.alert_id,
                    "customer_id": record.customer_id,
                    "action": str(transition),
                    "at": self.now,
                    "actor": None,
                    "score": assessment.score,
                    "detail": {"trigger": self.trigger.label, "reasons": [r.code for r in assessment.reasons]},
                }
            )
