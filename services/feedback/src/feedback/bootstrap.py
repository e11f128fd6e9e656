"""Composition root of the feedback service."""

from __future__ import annotations

from feedback.application.handlers import FeedbackHandlers
from feedback.config import FeedbackSettings
from feedback.domain.complaint import Complaint
from shared.events import feedback as contract
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import EventStore, PostgresEventStore
from shared.runtime import Container


def wire(container: Container[FeedbackSettings], store: EventStore | None = None) -> None:
    store = store or PostgresEventStore(container.engine)
    repository = AggregateRepository(
        store, Complaint, producer=contract.PRODUCER, topic=container.topics.name(contract.TOPIC)
    )
    container.parts["handlers"] = FeedbackHandlers(repository)
