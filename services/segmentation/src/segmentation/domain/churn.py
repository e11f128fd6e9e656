"""Churn risk (客户流失预防): a 0–100 score with reasons, its band, and the alert life cycle. Pure.

The score is the sum of the points of the signals present (capped at 100); each signal becomes a
:class:`Reason` with its code and evidence, ordered by points (highest first), then code. Receivables
count once, by the *oldest* overdue bucket holding an amount: ageing is one signal whose weight is its age.

Alerts (at most one live alert per customer; the caller keeps it and passes it back):

* **raise** when the score reaches the high band and there is no live alert;
* while live (open, acknowledged or snoozed), a repeat is an **occurrence**, not a new alert: the score
  climbing back to the high band after dipping below it (but not below the clear threshold) adds one to
  ``occurrences``; ``last_seen_at`` is the latest assessment at the high band. Counting crossings rather
  than assessments keeps the count independent of how often events and sweeps re-assess;
* **auto-close** ("recovered") as soon as the score falls below ``alert_clear_below`` (hysteresis);
* **snoozed** until T: occurrences are not recorded before T; the first assessment at or after T
  reopens it. Recovery still closes a snoozed alert;
* acknowledge / snooze / close-with-reason by an operator; illegal moves raise
  :class:`AlertTransitionError`. After a manual close a new alert needs the score to recover below the
  clear threshold first (the alert is *re-armed*), so closing does not bounce straight back open.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from segmentation.domain.policy import Bands, ChurnPolicy
from shared.events.segmentation import EvidenceValue
from shared.events.vocabulary import OverdueBucket, RiskBand
from shared.eventsourcing.aggregate import DomainError

ZERO = Decimal(0)
RECOVERED = "recovered"

#: Oldest first, with the reason code and the policy field of its points.
_BUCKETS: tuple[tuple[OverdueBucket, str, str], ...] = (
    (OverdueBucket.DAYS_90_PLUS, "receivables_overdue_90_plus", "days_90_plus"),
    (OverdueBucket.DAYS_61_90, "receivables_overdue_61_90", "days_61_90"),
    (OverdueBucket.DAYS_31_60, "receivables_overdue_31_60", "days_31_60"),
    (OverdueBucket.DAYS_1_30, "receivables_overdue_1_30", "days_1_30"),
)


@dataclass(frozen=True)
class Signals:
    """What the projection knows about one customer at assessment time (all as of ``now``)."""

    days_since_last_order: int | None = None
    cadence_threshold_days: Decimal | int | None = None  # activity.cadence_threshold_days
    spend_last_90: Decimal = ZERO
    spend_previous_90: Decimal = ZERO
    complaints_past_sla: int = 0
    complaints_reopened: int = 0
    latest_nps: int | None = None
    latest_csat: int | None = None
    overdue: Mapping[OverdueBucket, Decimal] = field(default_factory=dict)
    credit_holds: int = 0


@dataclass(frozen=True)
class Reason:
    code: str
    points: int
    evidence: Mapping[str, EvidenceValue]


@dataclass(frozen=True)
class ChurnAssessment:
    score: int
    band: RiskBand
    reasons: tuple[Reason, ...]


def _amount(value: Decimal) -> str:
    """An amount in evidence, always with 4 decimals: the same sum reads "318.00" folded from events and
    "318.0000" loaded from NUMERIC(…, 4) columns, so a replay compared its evidence as different."""
    return f"{value:.4f}"


def band(score: int, bands: Bands) -> RiskBand:
    if score >= bands.high:
        return RiskBand.HIGH
    if score >= bands.medium:
        return RiskBand.MEDIUM
    return RiskBand.LOW


def score(signals: Signals, policy: ChurnPolicy) -> ChurnAssessment:
    """The churn-risk score of ``signals``: monotone in every signal, within 0–100."""
    found = [r for r in _reasons(signals, policy) if r.points > 0]
    found.sort(key=lambda r: (-r.points, r.code))
    total = min(100, sum(r.points for r in found))
    return ChurnAssessment(score=total, band=band(total, policy.bands), reasons=tuple(found))


def _reasons(s: Signals, policy: ChurnPolicy) -> list[Reason]:
    return [reason for check in _CHECKS if (reason := check(s, policy)) is not None]


def _cadence_breach(s: Signals, policy: ChurnPolicy) -> Reason | None:
    if s.days_since_last_order is None or s.cadence_threshold_days is None:
        return None
    if s.days_since_last_order <= s.cadence_threshold_days:
        return None
    evidence: dict[str, str | int | bool | None] = {
        "days_since_last_order": s.days_since_last_order,
        "threshold_days": str(s.cadence_threshold_days),
    }
    return Reason("cadence_breach", policy.points.cadence_breach, evidence)


def _spend_down(s: Signals, policy: ChurnPolicy) -> Reason | None:
    if s.spend_previous_90 <= 0 or s.spend_last_90 >= s.spend_previous_90 * (1 - policy.spend_down_pct / 100):
        return None
    drop = (1 - s.spend_last_90 / s.spend_previous_90) * 100
    evidence = {
        "spend_last_90": _amount(s.spend_last_90),
        "spend_previous_90": _amount(s.spend_previous_90),
        "drop_pct": str(drop.quantize(Decimal("0.1"))),
    }
    return Reason("spend_down", policy.points.spend_down, evidence)


def _complaint_overdue(s: Signals, policy: ChurnPolicy) -> Reason | None:
    if s.complaints_past_sla <= 0:
        return None
    return Reason("complaint_overdue", policy.points.complaint_overdue, {"complaints": s.complaints_past_sla})


def _complaint_reopened(s: Signals, policy: ChurnPolicy) -> Reason | None:
    if s.complaints_reopened <= 0:
        return None
    return Reason("complaint_reopened", policy.points.complaint_reopened, {"complaints": s.complaints_reopened})


def _detractor_survey(s: Signals, policy: ChurnPolicy) -> Reason | None:
    evidence: dict[str, EvidenceValue] = {}
    if s.latest_nps is not None and s.latest_nps <= policy.detractor_nps_max:
        evidence["nps"] = s.latest_nps
    if s.latest_csat is not None and s.latest_csat <= policy.detractor_csat_max:
        evidence["csat"] = s.latest_csat
    return Reason("detractor_survey", policy.points.detractor_survey, evidence) if evidence else None


def _receivables_overdue(s: Signals, policy: ChurnPolicy) -> Reason | None:
    for bucket, code, points_field in _BUCKETS:
        amount = s.overdue.get(bucket, ZERO)
        if amount > 0:
            points = getattr(policy.points.receivables_overdue, points_field)
            return Reason(code, points, {"bucket": str(bucket), "amount": _amount(amount)})
    return None


def _credit_hold(s: Signals, policy: ChurnPolicy) -> Reason | None:
    if s.credit_holds <= 0:
        return None
    return Reason("credit_hold", policy.points.credit_hold, {"orders_on_hold": s.credit_holds})


_CHECKS: tuple[Callable[[Signals, ChurnPolicy], Reason | None], ...] = (
    _cadence_breach,
    _spend_down,
    _complaint_overdue,
    _complaint_reopened,
    _detractor_survey,
    _receivables_overdue,
    _credit_hold,
)


# -- alerts ------------------------------------------------------------------------------------


class AlertTransitionError(DomainError, ValueError):
    """An operator action that the alert's state does not allow (mapped to 409 by the API)."""


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    CLOSED = "closed"


class AlertTransition(StrEnum):
    """What an assessment did to the alert; the caller publishes RAISED and CLEARED as events."""

    NONE = "none"  # nothing to announce (bookkeeping such as last_score may still have changed)
    RAISED = "raised"
    RECURRED = "recurred"  # an occurrence was recorded
    UNSNOOZED = "unsnoozed"  # a snooze ran out; the alert is open again
    CLEARED = "cleared"  # auto-closed on recovery


@dataclass(frozen=True)
class Alert:
    state: AlertState
    raised_at: datetime
    raised_score: int
    reasons: tuple[str, ...]  # reason codes at raise
    last_score: int
    last_seen_at: datetime  # latest assessment at the high band, while not snoozed
    occurrences: int = 1  # the raise is the first
    snoozed_until: datetime | None = None
    handled_at: datetime | None = None  # latest operator action
    handled_by: str | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None
    rearmed: bool = False  # closed: the score has since been below the clear threshold

    @property
    def is_live(self) -> bool:
        return self.state is not AlertState.CLOSED


def next_alert(
    alert: Alert | None, assessment: ChurnAssessment, now: datetime, policy: ChurnPolicy
) -> tuple[Alert | None, AlertTransition]:
    """The alert after one assessment at ``now`` (on an event or in the scheduled sweep)."""
    current = assessment.score
    if alert is None or not alert.is_live:
        return _when_idle(alert, assessment, now, policy)
    if current < policy.alert_clear_below:
        closed = replace(
            alert,
            state=AlertState.CLOSED,
            closed_at=now,
            close_reason=RECOVERED,
            snoozed_until=None,
            last_score=current,
            rearmed=True,
        )
        return closed, AlertTransition.CLEARED
    transition = AlertTransition.NONE
    if alert.state is AlertState.SNOOZED and alert.snoozed_until is not None and now >= alert.snoozed_until:
        alert, transition = replace(alert, state=AlertState.OPEN, snoozed_until=None), AlertTransition.UNSNOOZED
    if current >= policy.alert_raise_at and alert.state is not AlertState.SNOOZED:
        recurred = alert.last_score < policy.alert_raise_at
        alert = replace(alert, last_seen_at=now, occurrences=alert.occurrences + int(recurred))
        if recurred and transition is AlertTransition.NONE:
            transition = AlertTransition.RECURRED
    return replace(alert, last_score=current), transition


def _when_idle(
    alert: Alert | None, assessment: ChurnAssessment, now: datetime, policy: ChurnPolicy
) -> tuple[Alert | None, AlertTransition]:
    if alert is not None and not alert.rearmed:
        if assessment.score < policy.alert_clear_below:
            return replace(alert, rearmed=True, last_score=assessment.score), AlertTransition.NONE
        return alert, AlertTransition.NONE
    if assessment.score < policy.alert_raise_at:
        return alert, AlertTransition.NONE
    raised = Alert(
        state=AlertState.OPEN,
        raised_at=now,
        raised_score=assessment.score,
        reasons=tuple(r.code for r in assessment.reasons),
        last_score=assessment.score,
        last_seen_at=now,
    )
    return raised, AlertTransition.RAISED


def acknowledge(alert: Alert, now: datetime, by: str) -> Alert:
    """An operator takes the alert in hand (from open or snoozed; ends a snooze)."""
    _require(alert, "acknowledge", AlertState.OPEN, AlertState.SNOOZED)
    return replace(alert, state=AlertState.ACKNOWLEDGED, snoozed_until=None, handled_at=now, handled_by=by)


def snooze(alert: Alert, until: datetime, now: datetime, by: str) -> Alert:
    """Silence occurrences until ``until`` (from any live state; a snooze can be extended)."""
    _require(alert, "snooze", AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.SNOOZED)
    if until <= now:
        raise AlertTransitionError(f"cannot snooze until {until.isoformat()}: not after now ({now.isoformat()})")
    return replace(alert, state=AlertState.SNOOZED, snoozed_until=until, handled_at=now, handled_by=by)


def close(alert: Alert, reason: str, now: datetime, by: str) -> Alert:
    """Close a live alert by hand with a reason; a new one needs a recovery first (re-arming)."""
    _require(alert, "close", AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.SNOOZED)
    if not reason.strip():
        raise AlertTransitionError("closing an alert needs a reason")
    return replace(
        alert,
        state=AlertState.CLOSED,
        snoozed_until=None,
        closed_at=now,
        close_reason=reason.strip(),
        handled_at=now,
        handled_by=by,
        rearmed=False,
    )


def _require(alert: Alert, action: str, *allowed: AlertState) -> None:
    if alert.state not in allowed:
        raise AlertTransitionError(f"cannot {action} an alert that is {alert.state}")
