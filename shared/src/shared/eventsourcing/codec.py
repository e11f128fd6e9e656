"""How an aggregate's events become stored ``data`` and back: the repository's extension point.

The default, :class:`PlainCodec`, stores ``model_dump(mode="json")`` and reads ``data`` as it is. A service
whose events hold something that must not be stored in clear (customers: contacts' personal data,
crypto-shredded per customer) supplies its own codec. A codec may return a :data:`TransactionHook` from
``encode`` so that whatever it needs stored with the events (a new data key, a deleted one) is written
in the *same* transaction as the append — or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from shared.eventsourcing.aggregate import Aggregate
from shared.eventsourcing.store import StoredEvent, TransactionHook, chain_hooks

__all__ = ["EncodedEvents", "EventCodec", "PlainCodec", "chain_hooks"]


@dataclass(frozen=True, slots=True)
class EncodedEvents:
    """The stored ``data`` of each pending event (same order) and work for the append transaction."""

    data: list[dict[str, Any]]
    hook: TransactionHook | None = None


class EventCodec(Protocol):
    async def encode(self, aggregate: Aggregate, events: Sequence[BaseModel]) -> EncodedEvents:
        """The ``data`` to store for ``events`` of ``aggregate`` (pending, in order)."""
        ...

    async def decode(self, aggregate_id: str, stored: Sequence[StoredEvent]) -> list[dict[str, Any]]:
        """The ``data`` to validate into event models, one per stored event of one stream."""
        ...


class PlainCodec:
    async def encode(self, aggregate: Aggregate, events: Sequence[BaseModel]) -> EncodedEvents:
        return EncodedEvents([event.model_dump(mode="json") for event in events])

    async def decode(self, aggregate_id: str, stored: Sequence[StoredEvent]) -> list[dict[str, Any]]:
        return [event.data for event in stored]
