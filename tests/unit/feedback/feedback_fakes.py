"""Fakes for the feedback unit tests: a fake clock and the service wired over in-memory fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from feedback.adapters.in_memory import InMemoryComplaints
from feedback.application.handlers import FeedbackHandlers
from feedback.application.sweep import EscalationSweep
from feedback.bootstrap import wire_in_memory
from feedback.config import FeedbackSettings
from shared.db.engine import create_engine
from shared.events.topics import Topics
from shared.eventsourcing.store import InMemoryEventStore
from shared.runtime import Container

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Service:
    container: Container[FeedbackSettings]
    store: InMemoryEventStore
    clock: FakeClock

    @property
    def handlers(self) -> FeedbackHandlers:
        return self.container.parts["handlers"]

    @property
    def complaints(self) -> InMemoryComplaints:
        return self.container.parts["complaints"]

    @property
    def sweep(self) -> EscalationSweep:
        return self.container.parts["sweep"]

    def stream_types(self, complaint_id: str) -> list[str]:
        return [e.event_type for e in self.store.streams.get(f"complaint-{complaint_id}", [])]


def in_memory_service(clock: FakeClock) -> Service:
    # The engine is never connected to: the fakes replace every use of it except readiness checks.
    engine = create_engine("postgresql://nobody:nothing@127.0.0.1:9/none")
    container = Container(settings=FeedbackSettings(), engine=engine, topics=Topics("t."))
    store = wire_in_memory(container, clock=clock)
    return Service(container, store, clock)
