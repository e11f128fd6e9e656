"""Composition root of the feedback service: the one place that builds repositories, handlers and
the SLA sweep, from settings and an injectable clock.

``wire`` is what every process uses (PostgreSQL); ``wire_in_memory`` builds the same parts over the
in-memory fakes, for unit tests of handlers, the sweep and the API.
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
from shared.events import feedback as contract
from shared.events.envelope import utc_now
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import EventStore, InMemoryEventStore, PostgresEventStore
from shared.runtime import Container

A = TypeVar("A", Complaint, Survey)


def wire(container: Container[FeedbackSettings], clock: Clock = utc_now) -> None:
    store = PostgresEventStore(container.engine)
    complaints = PostgresComplaints(container.engine, _repository(container, store, Complaint, clock))
    _assemble(container, complaints, _repository(container, store, Survey, clock), clock)


def wire_in_memory(container: Container[FeedbackSettings], clock: Clock = utc_now) -> InMemoryEventStore:
    """Wire the service over fakes; returns the fake store so tests can look inside."""
    store = InMemoryEventStore()
    complaints = InMemoryComplaints(_repository(container, store, Complaint, clock))
    _assemble(container, complaints, _repository(container, store, Survey, clock), clock)
    return store


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
    clock: Clock,
) -> None:
    settings = container.settings
    container.parts["complaints"] = complaints
    container.parts["handlers"] = FeedbackHandlers(complaints, surveys, sla_policy=settings.sla, clock=clock)
    container.parts["sweep"] = EscalationSweep(complaints, clock=clock, batch_size=settings.sweep_batch_size)
