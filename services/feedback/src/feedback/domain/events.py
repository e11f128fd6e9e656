"""The events the feedback service stores, and the registry its aggregates replay them with.

Almost every stored event *is* its contract payload (``shared.events.feedback``). One is richer:
the stored ``ComplaintReopened`` also records the fresh resolve deadline that follows a reopening, so
that a replay finds the same deadline whatever the SLA policy says by then, and its ``reopened_at`` is
required (the contract's is optional: it was added later). The public event keeps its contract shape;
:func:`feedback.application.public_events.to_public` drops the private ``resolve_by``.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from shared.events import feedback as contract
from shared.events.registry import EventRegistry
from shared.events.vocabulary import Instant


class ComplaintReopened(contract.ComplaintReopened):
    """Stored form of ComplaintReopened v1: the contract fields (``reopened_at`` required) + ``resolve_by``."""

    reopened_at: Instant = Field(description="when the customer rejected the resolution")
    resolve_by: Instant = Field(description="the fresh SLA deadline for resolving it again")

    @model_validator(mode="after")
    def _deadline_after_reopening(self) -> Self:
        if self.resolve_by < self.reopened_at:
            raise ValueError("resolve_by must not be before reopened_at")
        return self


#: (event_type, schema_version) → stored model, for the feedback service's own streams.
STORED_EVENTS = EventRegistry()
for _model in (
    contract.ComplaintFiled,
    contract.ComplaintAcknowledged,
    contract.ComplaintResolved,
    contract.ComplaintConfirmed,
    ComplaintReopened,
    contract.ComplaintEscalated,
    contract.SurveyAnswered,
):
    STORED_EVENTS.register(_model)
