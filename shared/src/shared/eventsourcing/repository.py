"""Load and save aggregates through an :class:`EventStore`, publishing via the outbox.

Saving appends the aggregate's pending (private) events and, in the same transaction, the outbox
messages of the public envelopes they map to. The mapping private → public is the service's
``to_public`` function (``application/public_events.py``); it may drop or transform events, e.g. to keep
personal data out of public events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel

from shared.events.envelope import Envelope, EventPayload, utc_now
from shared.eventsourcing.aggregate import Aggregate
from shared.eventsourcing.store import ConcurrencyConflict, EventStore, NewEvent, StoredEvent, TransactionHook
from shared.messaging.outbox import OutboxMessage

A = TypeVar("A", bound=Aggregate)

PublicMapper = Callable[[Aggregate, BaseModel], EventPayload | None]


def identity_mapper(_aggregate: Aggregate, event: BaseModel) -> EventPayload | None:
    """Private events that *are* contract payloads are published as they are."""
    return event if isinstance(event, EventPayload) else None


class AggregateRepository(Generic[A]):
    def __init__(
        self,
        store: EventStore,
        aggregate_cls: type[A],
        *,
        producer: str,
        topic: str,
        to_public: PublicMapper = identity_mapper,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.aggregate_cls = aggregate_cls
        self.producer = producer
        self.topic = topic
        self.to_public = to_public
        self.clock = clock

    async def get(self, aggregate_id: str) -> A | None:
        stored = await self.store.read_stream(self.aggregate_cls.stream_id_for(aggregate_id))
        if not stored:
            return None
        return self.aggregate_cls.replay(aggregate_id, (self.deserialize(e) for e in stored))

    async def history(self, aggregate_id: str) -> list[StoredEvent]:
        return await self.store.read_stream(self.aggregate_cls.stream_id_for(aggregate_id))

    def deserialize(self, stored: StoredEvent) -> BaseModel:
        model = self.aggregate_cls.event_registry.model_for(stored.event_type, stored.schema_version)
        return model.model_validate(stored.data)

    async def save(
        self,
        aggregate: A,
        *,
        correlation_id: str,
        causation_id: str | None = None,
        hook: TransactionHook | None = None,
        expected_version: int | None = None,
    ) -> list[Envelope]:
        """Append pending events + their public envelopes atomically; returns the envelopes.

        ``expected_version`` (from ``If-Match``) is the version the caller last saw; a different stored
        version raises :class:`ConcurrencyConflict` before anything is written."""
        if expected_version is not None and expected_version != aggregate.stored_version:
            raise ConcurrencyConflict(aggregate.stream_id, expected_version, aggregate.stored_version)
        pending = aggregate.pending_events
        if not pending and hook is None:
            return []
        now = self.clock()
        base = aggregate.stored_version
        new_events: list[NewEvent] = []
        envelopes: list[Envelope] = []
        for offset, event in enumerate(pending, start=1):
            new = NewEvent(
                event_type=type(event).event_type,  # type: ignore[attr-defined]
                schema_version=type(event).schema_version,  # type: ignore[attr-defined]
                data=event.model_dump(mode="json"),
                occurred_at=now,
                metadata={
                    "correlation_id": correlation_id,
                    "causation_id": causation_id,
                    "customer_id": aggregate.customer_id,
                },
            )
            new_events.append(new)
            public = self.to_public(aggregate, event)
            if public is not None:
                envelopes.append(
                    Envelope.wrap(
                        public,
                        producer=self.producer,
                        aggregate_type=aggregate.aggregate_type,
                        aggregate_id=aggregate.id,
                        aggregate_version=base + offset,
                        customer_id=aggregate.customer_id,
                        correlation_id=correlation_id,
                        causation_id=causation_id,
                        occurred_at=now,
                        event_id=new.event_id,
                    )
                )
        await self.store.append(
            aggregate.stream_id,
            aggregate.aggregate_type,
            base,
            new_events,
            [OutboxMessage.from_envelope(e, self.topic) for e in envelopes],
            hook,
        )
        aggregate.mark_saved()
        return envelopes
