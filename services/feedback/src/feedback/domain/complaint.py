"""The Complaint aggregate: the closed loop (投诉闭环) and its SLA deadlines.

    file ──► open ──acknowledge──► acknowledged ──resolve──► resolved ──confirm──► closed
               └──────────────resolve──────────────────────────┘  │
                                     reopened ◄──────reopen───────┘  (resolve again)

* Filing fixes two deadlines from the SLA policy of the complaint's severity: ``acknowledge_by``
  (filed_at + acknowledge window) and ``resolve_by`` (filed_at + resolve window).
* A resolution closes the loop only when the customer confirms it; if the customer rejects it the
  complaint is *reopened* and gets a **fresh resolve deadline: reopened_at + the severity's resolve
  window under the policy in force at the reopening**. The acknowledge deadline is not reset: the
  complaint already has an owner (a resolution implies one).
* :meth:`Complaint.escalate_overdue` records one ``ComplaintEscalated`` per missed deadline: the
  acknowledge deadline (while the complaint is still ``open``) and the resolve deadline (while it is
  unresolved: open, acknowledged or reopened). Each deadline is escalated at most once; a reopen sets
  a new resolve deadline, which may be escalated once more. Resolved-but-unconfirmed and closed
  complaints are never escalated: the next step is the customer's.
* **Every step has a time** (``at``, recorded in its event): "now" by default, or earlier for history
  entered after the fact (:mod:`feedback.domain.instants`: never in the future, never before the
  previous step). A step taken after a watched deadline passed first records the escalation the sweep
  would have recorded had it looked in between (``overdue_by_hours`` counted to the step), so a missed
  deadline is on record whether the sweep or the late step finds it first — and an imported history
  gets the escalations its dates imply whenever the sweep happens to run.
* A complaint may be filed **with the steps it has already taken** (:meth:`Complaint.take_history`, an
  import): the same commands in order, under the same rules, recorded in one append — so a consumer
  never sees it half-way (a complaint "still open" that was in fact resolved long ago).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from feedback.domain.events import STORED_EVENTS, ComplaintReopened
from feedback.domain.instants import BeforePreviousStep, FieldRuleViolation, dated
from feedback.domain.sla import SlaPolicy
from shared.events import feedback as contract
from shared.events.vocabulary import SlaBreach
from shared.eventsourcing.aggregate import Aggregate, DomainError


class ComplaintStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"


#: Statuses in which the resolve clock runs.
UNRESOLVED = frozenset({ComplaintStatus.OPEN, ComplaintStatus.ACKNOWLEDGED, ComplaintStatus.REOPENED})


class Step(StrEnum):
    """A step of the loop after filing, named as the API's resources are."""

    ACKNOWLEDGEMENT = "acknowledgement"
    RESOLUTION = "resolution"
    REOPENING = "reopening"
    CONFIRMATION = "confirmation"


@dataclass(frozen=True)
class StepTaken:
    """One step of a history entered after the fact: which, when, and its text (who acknowledged, the
    resolution, or why the customer reopened it; required for a resolution and a reopening)."""

    step: Step
    at: datetime
    note: str | None = None


class StepOutOfTurn(FieldRuleViolation):
    def __init__(self, message: str, step: Step) -> None:
        super().__init__(message, field="step", code="step_out_of_turn", value=str(step))


class Complaint(Aggregate):
    aggregate_type = "complaint"
    event_registry = STORED_EVENTS

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self._customer_id = ""
        self.status: ComplaintStatus | None = None
        self.category = ""
        self.severity = ""
        self.summary = ""
        self.order_id: str | None = None
        self.filed_at: datetime | None = None
        self.acknowledge_by: datetime | None = None
        self.resolve_by: datetime | None = None
        self.acknowledged_by: str | None = None
        self.resolution: str | None = None
        self.reopen_count = 0
        self.escalations = 0
        #: when each step last happened (None: not taken, or recorded before steps carried their time)
        self.acknowledged_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.confirmed_at: datetime | None = None
        self.reopened_at: datetime | None = None
        #: the latest step with a known time: (its name, when); a later step may not be dated before it
        self.last_step: tuple[str, datetime] | None = None
        self._acknowledge_escalated = False
        self._resolve_escalated = False

    @property
    def customer_id(self) -> str:
        return self._customer_id

    # -- commands ---------------------------------------------------------------------------------
    @classmethod
    def file(
        cls,
        complaint_id: str,
        customer_id: str,
        *,
        category: str,
        severity: str,
        summary: str,
        order_id: str | None,
        filed_at: datetime,
        policy: SlaPolicy,
    ) -> Complaint:
        complaint = cls(complaint_id)
        sla = policy.for_severity(severity)
        complaint._record(
            contract.ComplaintFiled(
                complaint_id=complaint_id,
                customer_id=customer_id,
                category=category,
                severity=severity,
                summary=summary,
                order_id=order_id,
                filed_at=filed_at,
                acknowledge_by=filed_at + sla.acknowledge_within,
                resolve_by=filed_at + sla.resolve_within,
            )
        )
        return complaint

    def acknowledge(self, acknowledged_by: str | None, *, at: datetime | None = None) -> None:
        """Someone takes ownership, at ``at`` (None: no time of its own is recorded, as before steps had one)."""
        self._require({ComplaintStatus.OPEN}, "acknowledge")
        self._catch_up(at)
        self._record(
            contract.ComplaintAcknowledged(complaint_id=self.id, acknowledged_by=acknowledged_by, acknowledged_at=at)
        )

    def resolve(self, resolution: str, *, at: datetime | None = None) -> None:
        self._require(UNRESOLVED, "resolve")
        self._catch_up(at)
        self._record(contract.ComplaintResolved(complaint_id=self.id, resolution=resolution, resolved_at=at))

    def confirm(self, *, at: datetime | None = None) -> None:
        self._require({ComplaintStatus.RESOLVED}, "confirm")
        self._catch_up(at)
        self._record(contract.ComplaintConfirmed(complaint_id=self.id, confirmed_at=at))

    def reopen(self, reason: str, *, at: datetime, policy: SlaPolicy) -> None:
        """The customer rejects the resolution: open again, with a fresh resolve deadline from ``at``."""
        self._require({ComplaintStatus.RESOLVED}, "reopen")
        self._catch_up(at)
        resolve_by = at + policy.for_severity(self.severity).resolve_within
        self._record(ComplaintReopened(complaint_id=self.id, reason=reason, reopened_at=at, resolve_by=resolve_by))

    def take_history(self, steps: Sequence[StepTaken], *, now: datetime, policy: SlaPolicy) -> None:
        """Take ``steps`` in order, each as its command would, at its own time; a refusal names the step's
        place (``steps``, n, field) — a step out of turn here is bad input, not a conflict."""
        for n, taken in enumerate(steps):
            try:
                self._take(taken, self.step_time(taken.at, now), policy)
            except FieldRuleViolation as exc:
                raise exc.inside("steps", n) from None
            except DomainError as exc:
                raise StepOutOfTurn(str(exc), taken.step).inside("steps", n) from None

    def _take(self, taken: StepTaken, at: datetime, policy: SlaPolicy) -> None:
        if taken.step is Step.ACKNOWLEDGEMENT:
            self.acknowledge(taken.note, at=at)
        elif taken.step is Step.CONFIRMATION:
            self.confirm(at=at)
        elif not taken.note:
            field = "resolution" if taken.step is Step.RESOLUTION else "reason"
            raise FieldRuleViolation(f"a {taken.step} needs its {field}", field=field, code="missing")
        elif taken.step is Step.RESOLUTION:
            self.resolve(taken.note, at=at)
        else:
            self.reopen(taken.note, at=at, policy=policy)

    def step_time(self, given: datetime | None, now: datetime) -> datetime:
        """When the next step happens: ``given`` (refused in the future or before the previous step), or
        ``now`` — but never before the previous step, which a caller whose clock runs a little ahead
        (within the tolerated skew) may have dated after our "now"."""
        if given is None:
            return now if self.last_step is None else max(now, self.last_step[1])
        return dated(given, now, field="at")

    def _catch_up(self, at: datetime | None) -> None:
        """Before a step at ``at``: refuse it if it precedes the previous step, and escalate the deadlines
        that passed before it unescalated (the sweep would have, had it looked in between)."""
        if at is None:
            return
        if self.last_step is not None and at < self.last_step[1]:
            raise BeforePreviousStep("at", at, *self.last_step)
        self.escalate_overdue(at)

    def escalate_overdue(self, now: datetime) -> int:
        """Record a ComplaintEscalated for every deadline missed at ``now`` and not escalated yet.

        Returns how many were recorded (0 when nothing is due: calling again is harmless)."""
        due = [(breach, deadline) for breach, deadline in self._watched_deadlines() if now > deadline]
        for breach, deadline in due:
            self._record(
                contract.ComplaintEscalated(
                    complaint_id=self.id,
                    breach=breach,
                    deadline=deadline,
                    overdue_by_hours=(now - deadline) // timedelta(hours=1),
                )
            )
        return len(due)

    # -- queries ----------------------------------------------------------------------------------
    @property
    def next_escalation_at(self) -> datetime | None:
        """The earliest deadline that a sweep would escalate once passed; None if none is watched."""
        return min((deadline for _, deadline in self._watched_deadlines()), default=None)

    def _watched_deadlines(self) -> list[tuple[SlaBreach, datetime]]:
        watched: list[tuple[SlaBreach, datetime]] = []
        if self.status == ComplaintStatus.OPEN and not self._acknowledge_escalated and self.acknowledge_by:
            watched.append((SlaBreach.ACKNOWLEDGE, self.acknowledge_by))
        if self.status in UNRESOLVED and not self._resolve_escalated and self.resolve_by:
            watched.append((SlaBreach.RESOLVE, self.resolve_by))
        return watched

    def _require(self, allowed: frozenset[ComplaintStatus] | set[ComplaintStatus], action: str) -> None:
        if self.status not in allowed:
            raise DomainError(f"cannot {action} complaint {self.id} while it is {self.status or 'unfiled'}")

    # -- state ------------------------------------------------------------------------------------
    def _apply(self, event: BaseModel) -> None:
        match event:
            case contract.ComplaintFiled():
                self._customer_id = event.customer_id
                self.category = event.category
                self.severity = event.severity
                self.summary = event.summary
                self.order_id = event.order_id
                self.filed_at = event.filed_at
                self.acknowledge_by = event.acknowledge_by
                self.resolve_by = event.resolve_by
                self.status = ComplaintStatus.OPEN
                self._stepped("filing", event.filed_at)
            case contract.ComplaintAcknowledged():
                self.acknowledged_by = event.acknowledged_by
                self.acknowledged_at = event.acknowledged_at
                self.status = ComplaintStatus.ACKNOWLEDGED
                self._stepped("acknowledgement", event.acknowledged_at)
            case contract.ComplaintResolved():
                self.resolution = event.resolution
                self.resolved_at = event.resolved_at
                self.status = ComplaintStatus.RESOLVED
                self._stepped("resolution", event.resolved_at)
            case contract.ComplaintConfirmed():
                self.confirmed_at = event.confirmed_at
                self.status = ComplaintStatus.CLOSED
                self._stepped("confirmation", event.confirmed_at)
            case ComplaintReopened():
                self.resolve_by = event.resolve_by
                self.reopened_at = event.reopened_at
                self._resolve_escalated = False
                self.reopen_count += 1
                self.status = ComplaintStatus.REOPENED
                self._stepped("reopening", event.reopened_at)
            case contract.ComplaintEscalated():
                if event.breach == SlaBreach.ACKNOWLEDGE:
                    self._acknowledge_escalated = True
                else:
                    self._resolve_escalated = True
                self.escalations += 1
            case _:
                raise TypeError(f"a complaint cannot apply {type(event).__name__}")

    def _stepped(self, step: str, at: datetime | None) -> None:
        if at is not None and (self.last_step is None or at >= self.last_step[1]):
            self.last_step = (step, at)
