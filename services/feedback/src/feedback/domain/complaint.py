"""The Complaint aggregate: the closed loop (投诉闭环) filed → acknowledged → resolved → confirmed.

SLA deadlines are set when a complaint is filed, from the severity policy; a resolved complaint
closes only when the customer confirms, else it is reopened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from shared.events import feedback as contract
from shared.events.registry import REGISTRY
from shared.eventsourcing.aggregate import Aggregate, DomainError


@dataclass(frozen=True)
class Sla:
    acknowledge_within: timedelta
    resolve_within: timedelta


#: Default SLA per severity (DESIGN §4: acknowledge within hours, resolve within days).
DEFAULT_SLA: dict[str, Sla] = {
    "critical": Sla(timedelta(hours=2), timedelta(days=1)),
    "high": Sla(timedelta(hours=4), timedelta(days=3)),
    "medium": Sla(timedelta(hours=24), timedelta(days=7)),
    "low": Sla(timedelta(hours=48), timedelta(days=14)),
}


class Complaint(Aggregate):
    aggregate_type = "complaint"
    event_registry = REGISTRY

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self._customer_id = ""
        self.category = ""
        self.severity = ""
        self.status = "new"
        self.filed_at: datetime | None = None

    @property
    def customer_id(self) -> str:
        return self._customer_id

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
        sla: dict[str, Sla] = DEFAULT_SLA,
    ) -> Complaint:
        complaint = cls(complaint_id)
        deadlines = sla[severity]
        complaint._record(
            contract.ComplaintFiled(
                complaint_id=complaint_id,
                customer_id=customer_id,
                category=category,
                severity=severity,
                summary=summary,
                order_id=order_id,
                filed_at=filed_at,
                acknowledge_by=filed_at + deadlines.acknowledge_within,
                resolve_by=filed_at + deadlines.resolve_within,
            )
        )
        return complaint

    def acknowledge(self, acknowledged_by: str | None) -> None:
        self._require("open", "acknowledge")
        self._record(contract.ComplaintAcknowledged(complaint_id=self.id, acknowledged_by=acknowledged_by))

    def resolve(self, resolution: str) -> None:
        self._require({"open", "acknowledged", "reopened"}, "resolve")
        self._record(contract.ComplaintResolved(complaint_id=self.id, resolution=resolution))

    def confirm(self) -> None:
        self._require("resolved", "confirm")
        self._record(contract.ComplaintConfirmed(complaint_id=self.id))

    def reopen(self, reason: str) -> None:
        self._require("resolved", "reopen")
        self._record(contract.ComplaintReopened(complaint_id=self.id, reason=reason))

    def _require(self, allowed: str | set[str], action: str) -> None:
        states = {allowed} if isinstance(allowed, str) else allowed
        if self.status not in states:
            raise DomainError(f"cannot {action} complaint {self.id} while it is {self.status}")

    def _apply(self, event: BaseModel) -> None:
        match event:
            case contract.ComplaintFiled():
                self._customer_id = event.customer_id
                self.category = event.category
                self.severity = event.severity
                self.filed_at = event.filed_at
                self.status = "open"
            case contract.ComplaintAcknowledged():
                self.status = "acknowledged"
            case contract.ComplaintResolved():
                self.status = "resolved"
            case contract.ComplaintConfirmed():
                self.status = "closed"
            case contract.ComplaintReopened():
                self.status = "reopened"
            case _:
                pass
