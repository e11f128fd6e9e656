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
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from feedback.domain.events import STORED_EVENTS, ComplaintReopened
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

    def acknowledge(self, acknowledged_by: str | None) -> None:
        self._require({ComplaintStatus.OPEN}, "acknowledge")
        self._record(contract.ComplaintAcknowledged(complaint_id=self.id, acknowledged_by=acknowledged_by))

    def resolve(self, resolution: str) -> None:
        self._require(UNRESOLVED, "resolve")
        self._record(contract.ComplaintResolved(complaint_id=self.id, resolution=resolution))

    def confirm(self) -> None:
        self._require({ComplaintStatus.RESOLVED}, "confirm")
        self._record(contract.ComplaintConfirmed(complaint_id=self.id))

    def reopen(self, reason: str, *, at: datetime, policy: SlaPolicy) -> None:
        """The customer rejects the resolution: open again, with a fresh resolve deadline from ``at``."""
        self._require({ComplaintStatus.RESOLVED}, "reopen")
        resolve_by = at + policy.for_severity(self.severity).resolve_within
        self._record(ComplaintReopened(complaint_id=self.id, reason=reason, reopened_at=at, resolve_by=resolve_by))

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
            case contract.ComplaintAcknowledged():
                self.acknowledged_by = event.acknowledged_by
                self.status = ComplaintStatus.ACKNOWLEDGED
            case contract.ComplaintResolved():
                self.resolution = event.resolution
                self.status = ComplaintStatus.RESOLVED
            case contract.ComplaintConfirmed():
                self.status = ComplaintStatus.CLOSED
            case ComplaintReopened():
                self.resolve_by = event.resolve_by
                self._resolve_escalated = False
                self.reopen_count += 1
                self.status = ComplaintStatus.REOPENED
            case contract.ComplaintEscalated():
                if event.breach == SlaBreach.ACKNOWLEDGE:
                    self._acknowledge_escalated = True
                else:
                    self._resolve_escalated = True
                self.escalations += 1
            case _:
                raise TypeError(f"a complaint cannot apply {type(event).__name__}")
