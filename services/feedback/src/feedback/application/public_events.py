"""Stored events → public contract payloads (the one place where feedback shapes what it publishes).

Every stored event is its contract payload except the stored ``ComplaintReopened``, whose private
``resolve_by`` is dropped so the public event keeps its contract shape.
"""

from __future__ import annotations

from pydantic import BaseModel

from feedback.domain.events import ComplaintReopened
from shared.events import feedback as contract
from shared.events.envelope import EventPayload
from shared.eventsourcing.aggregate import Aggregate


def to_public(_aggregate: Aggregate, event: BaseModel) -> EventPayload | None:
    if isinstance(event, ComplaintReopened):
        return contract.ComplaintReopened(
            complaint_id=event.complaint_id, reason=event.reason, reopened_at=event.reopened_at
        )
    return event if isinstance(event, EventPayload) else None
