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

from datetime import UTC, datetime, timedelta

from shared.eventsourcing.aggregate import FieldRuleViolation

#: How far ahead of the service's clock a given instant may be (callers' clocks drift a little).
CLOCK_SKEW = timedelta(minutes=5)


class InTheFuture(FieldRuleViolation):
    def __init__(self, field: str, at: datetime, now: datetime) -> None:
        super().__init__(
            f"{field} {iso(at)} is in the future (the service's clock reads {iso(now)}; "
            f"{CLOCK_SKEW.total_seconds() / 60:g} minutes of clock skew are tolerated)",
            field=field,
            code="in_the_future",
            value=iso(at),
        )


class BeforePreviousStep(FieldRuleViolation):
    def __init__(self, field: str, at: datetime, previous: str, previous_at: datetime) -> None:
        super().__init__(
            f"{field} {iso(at)} is before the complaint's previous step ({previous} at {iso(previous_at)})",
            field=field,
            code="before_previous_step",
            value=iso(at),
        )


def dated(given: datetime | None, now: datetime, *, field: str) -> datetime:
    """``given`` if it is not in the future (beyond :data:`CLOCK_SKEW`), else refused; ``now`` if absent."""
    if given is None:
        return now
    if given > now + CLOCK_SKEW:
        raise InTheFuture(field, given, now)
    return given


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
