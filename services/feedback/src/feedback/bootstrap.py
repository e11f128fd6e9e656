"""Composition root of the feedback service: the one place that builds repositories, handlers and
the SLA sweep, from settings and an injectable clock.

``wire`` is what every process uses (PostgreSQL); ``wire_in_memory`` builds the same parts over the
in-memory fakes, for unit tests of handlers, the sweep and the API.

``FEEDBACK_CLOCK_START`` (demos of historical data), when no clock is injected, sets the service's
business clock: it starts at that instant and runs in real time, and dates the commands that give no date
(a complaint filed, a step taken, a survey answered "now"), judges "not in the future" and is the SLA
sweep's now — so a complaint filed during a demo of 2011 data is due and breached on that timeline. Events
keep their real recording times (``occurred_at``).
"""

from __future__ import annotations

from typing import TypeVar

from feedback.adapters.in_memory import InMemoryComplaints
from feedback.adapters.postgres import PostgresComplaints
from feedback.application.handlers import Clock, FeedbackHandlers
from feedback.application.ports import Complaints
from feedback.application.public_events import to_public
from feedback.application.sweep import EscalationSweep
from feedback.config import FeedbackSettings
from feedback.domain.complaint import Complaint
from feedback.domain.survey import Survey
from shared.clock import running_from
from shared.events import feedback as contract
from shared.events.envelope import utc_now
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import EventStore, InMemoryEventStore, PostgresEventStore
from shared.runtime import Container

A = TypeVar("A", Complaint, Survey)


def wire(container: Container[FeedbackSettings], clock: Clock | None = None) -> None:
    store = PostgresEventStore(container.engine)
    now = clock or utc_now
    complaints = PostgresComplaints(container.engine, _repository(container, store, Complaint, now))
    _assemble(container, complaints, _repository(container, store, Survey, now), _business_clock(container, clock))


def wire_in_memory(container: Container[FeedbackSettings], clock: Clock | None = None) -> InMemoryEventStore:
    """Wire the service over fakes; returns the fake store so tests can look inside."""
    store = InMemoryEventStore()
    now = clock or utc_now
    complaints = InMemoryComplaints(_repository(container, store, Complaint, now))
    _assemble(container, complaints, _repository(container, store, Survey, now), _business_clock(container, clock))
    return store


def _business_clock(container: Container[FeedbackSettings], injected: Clock | None) -> Clock:
    """The injected clock (tests); else, when ``FEEDBACK_CLOCK_START`` is set, one running from it (since
    ``FEEDBACK_CLOCK_ANCHOR`` if that is set); else now."""
    if injected is not None:
        return injected
    settings = container.settings
    return utc_now if settings.clock_start is None else running_from(settings.clock_start, settings.clock_anchor)


def _repository(
    container: Container[FeedbackSettings], store: EventStore, aggregate: type[A], clock: Clock
) -> AggregateRepository[A]:
    return AggregateRepository(
        store,
        aggregate,
        producer=contract.PRODUCER,
        topic=container.topics.name(contract.TOPIC),
        to_public=to_public,
        clock=clock,
    )


def _assemble(
    container: Container[FeedbackSettings],
    complaints: Complaints,
    surveys: AggregateRepository[Survey],
    business: Clock,
) -> None:
    settings = container.settings
    container.parts["complaints"] = complaints
    container.parts["handlers"] = FeedbackHandlers(complaints, surveys, sla_policy=settings.sla, clock=business)
    container.parts["sweep"] = EscalationSweep(complaints, clock=business, batch_size=settings.sweep_batch_size)
