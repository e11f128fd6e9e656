"""When things happened: the rules for instants that a caller gives (history entered after the fact).

A complaint's filing (``filed_at``), each step of its loop (``at``) and a survey answer
(``answered_at``) default to the service's "now"; a caller may date them in the past, e.g. an import of
an older system's history or an entry made late. Two rules:

* **not in the future**: an instant later than the service's clock plus :data:`CLOCK_SKEW` is refused —
  it cannot have happened yet (the tolerance absorbs a caller's clock running a little ahead);
* **in order** (complaints, :meth:`feedback.domain.complaint.Complaint.step_time`): a step is never dated
  before the complaint's previous step.

Each refusal is a :class:`FieldRuleViolation` naming the field, which the API turns into a 422 field
error (a rule about the complaint's *status* stays a plain ``DomainError``, a 409).
"""

from __future__ import annotations

from datetime import datetime

from shared.clock import CLOCK_SKEW, InTheFuture, dated, iso
from shared.eventsourcing.aggregate import FieldRuleViolation

__all__ = ["CLOCK_SKEW", "BeforePreviousStep", "FieldRuleViolation", "InTheFuture", "dated", "iso"]


class BeforePreviousStep(FieldRuleViolation):
    def __init__(self, field: str, at: datetime, previous: str, previous_at: datetime) -> None:
        super().__init__(
            f"{field} {iso(at)} is before the complaint's previous step ({previous} at {iso(previous_at)})",
            field=field,
            code="before_previous_step",
            value=iso(at),
        )
