"""Load and save aggregates through an :class:`EventStore`, publishing via the outbox.

Saving appends the aggregate's pending (private) events and, in the same transaction, the outbox
messages of the public envelopes they map to. The mapping private → public is the service's
``to_public`` function (``application/public_events.py``); it may drop or transform events, e.g. to keep
personal data out of public events.

How events become stored ``data`` and back is the ``codec``'s business (default: plain JSON); the
customers service uses it to encrypt personal data per customer (see :mod:`shared.eventsourcing.codec`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from prometheus_client import Counter
from pydantic import BaseModel

from shared import idempotency
from shared.events.envelope import Envelope, EventPayload, utc_now
from shared.eventsourcing.aggregate import Aggregate
from shared.eventsourcing.codec import EventCodec, PlainCodec
from shared.eventsourcing.store import (
    ConcurrencyConflict,
    EventStore,
    NewEvent,
    StoredEvent,
    TransactionHook,
    chain_hooks,
)
from shared.messaging.outbox import OutboxMessage

A = TypeVar("A", bound=Aggregate)

EVENTS_APPENDED = Counter(
    "tierstream_events_appended_total",
    "Events appended to the event store (counted once their transaction committed)",
    ["service", "event_type"],
)

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
        codec: EventCodec | None = None,
    ) -> None:
        self.store = store
        self.aggregate_cls = aggregate_cls
        self.producer = producer
        self.topic = topic
        self.to_public = to_public
        self.clock = clock
        self.codec: EventCodec = codec or PlainCodec()
        self._appended: dict[str, Any] = {}  # event type → its labelled counter (label lookups cost)

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A transaction of the store, to pass as ``save(..., tx=...)`` (see :meth:`EventStore.transaction`)."""
        return self.store.transaction()

    def connection(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """One connection of the store for a command's load and save (``get(..., tx=)``, ``save(..., tx=)``):
        no transaction around them; the save is atomic on its own (see :meth:`EventStore.connection`)."""
        return self.store.connection()

    async def get(self, aggregate_id: str, *, tx: Any = None) -> A | None:
        stored = await self.store.read_stream(self.aggregate_cls.stream_id_for(aggregate_id), tx=tx)
        if not stored:
            return None
        decoded = await self.codec.decode(aggregate_id, stored)
        events = (self.deserialize(e, data) for e, data in zip(stored, decoded, strict=True))
        return self.aggregate_cls.replay(aggregate_id, events)

    async def history(self, aggregate_id: str) -> list[StoredEvent]:
        return await self.store.read_stream(self.aggregate_cls.stream_id_for(aggregate_id))

    def deserialize(self, stored: StoredEvent, data: dict[str, Any] | None = None) -> BaseModel:
        """The event model of ``stored``; ``data`` is its decoded data when a codec transformed it."""
        model = self.aggregate_cls.event_registry.model_for(stored.event_type, stored.schema_version)
        return model.model_validate(stored.data if data is None else data)

    async def save(
        self,
        aggregate: A,
        *,
        correlation_id: str,
        causation_id: str | None = None,
        hook: TransactionHook | None = None,
        expected_version: int | None = None,
        tx: Any = None,
    ) -> list[Envelope]:
        """Append pending events + their public envelopes atomically; returns the envelopes.

        ``expected_version`` (from ``If-Match``) is the version the caller last saw; a different stored
        version raises :class:`ConcurrencyConflict` before anything is written.

        When the HTTP request being served carries an ``Idempotency-Key`` (:mod:`shared.idempotency`),
        the key is recorded in the same append transaction: events and key commit together or not at all.
        ``tx`` (from :meth:`transaction`) appends in a transaction the caller holds open, e.g. after reads
        that must see the same state; the events then commit when that transaction does."""
        if expected_version is not None and expected_version != aggregate.stored_version:
            raise ConcurrencyConflict(aggregate.stream_id, expected_version, aggregate.stored_version)
        pending = aggregate.pending_events
        if not pending and hook is None:
            return []
        claim = idempotency.current_claim() if pending else None
        if claim is not None:
            hook = claim.hook(hook)
        now = self.clock()
        base = aggregate.stored_version
        encoded = await self.codec.encode(aggregate, pending)
        new_events: list[NewEvent] = []
        envelopes: list[Envelope] = []
        for offset, (event, data) in enumerate(zip(pending, encoded.data, strict=True), start=1):
            new = NewEvent(
                event_type=type(event).event_type,  # type: ignore[attr-defined]
                schema_version=type(event).schema_version,  # type: ignore[attr-defined]
                data=data,
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
            chain_hooks(encoded.hook, hook),
            tx=tx,
        )
        if claim is not None:
            claim.recorded = True
        if tx is None or not hasattr(tx, "after_commit"):
            self._count(new_events)
        else:
            tx.after_commit(lambda: self._count(new_events))
        aggregate.mark_saved()
        return envelopes

    def _count(self, events: list[NewEvent]) -> None:
        for event in events:
            counter = self._appended.get(event.event_type)
            if counter is None:
                counter = self._appended[event.event_type] = EVENTS_APPENDED.labels(self.producer, event.event_type)
            counter.inc()
