"""Crypto-shredding at the storage boundary: the customers service's :class:`EventCodec`.

On save, each field an event model names in ``personal_fields`` is sealed (AES-256-GCM) with the
customer's data key; the first such value creates the key, and ``CustomerPersonalDataErased`` deletes
it — both in the append's own transaction, so a key never exists without the events that need it and
erasure is atomic with the event that records it. On load, sealed values open with the key; when the
key is gone (or is a later one, after an erasure) they load as ``None``: erased.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from customers.adapters.crypto import ALGORITHM, DataKey, is_sealed, open_sealed, seal, sealed_key_id
from shared.events import customers as contract
from shared.events.registry import EventRegistry
from shared.eventsourcing.aggregate import Aggregate
from shared.eventsourcing.codec import EncodedEvents
from shared.eventsourcing.store import StoredEvent, TransactionHook

_UNLOADED: Any = object()


class DataKeys(Protocol):
    """Where data keys live (``customers.adapters.keys.CustomerKeys`` in PostgreSQL)."""

    async def find(self, customer_id: str) -> DataKey | None: ...

    def changes(self, customer_id: str, *, delete_current: bool, create: DataKey | None) -> TransactionHook | None: ...


def personal_fields(model: type[BaseModel]) -> tuple[str, ...]:
    return getattr(model, "personal_fields", ())


def _context(customer_id: str) -> str:
    """Associated data: a sealed value opens only in its own customer's stream."""
    return f"tierstream.customers/{customer_id}"


class PersonalDataCodec:
    def __init__(self, keys: DataKeys, registry: EventRegistry) -> None:
        self.keys = keys
        self.registry = registry

    async def encode(self, aggregate: Aggregate, events: Sequence[BaseModel]) -> EncodedEvents:
        customer_id = aggregate.customer_id
        key: DataKey | None = _UNLOADED
        created: DataKey | None = None
        shred = False
        encoded: list[dict[str, Any]] = []
        for event in events:
            data = event.model_dump(mode="json")
            if isinstance(event, contract.CustomerPersonalDataErased):
                shred, key, created = True, None, None
            for name in personal_fields(type(event)):
                if data.get(name) is None:
                    continue
                if key is _UNLOADED:
                    key = await self.keys.find(customer_id)
                if key is None:
                    key = created = DataKey.generate()
                data[name] = seal(key, json.dumps(data[name]).encode(), context=_context(customer_id))
            encoded.append(data)
        return EncodedEvents(encoded, self.keys.changes(customer_id, delete_current=shred, create=created))

    async def decode(self, aggregate_id: str, stored: Sequence[StoredEvent]) -> list[dict[str, Any]]:
        key: DataKey | None = _UNLOADED
        decoded: list[dict[str, Any]] = []
        for event in stored:
            data = event.data
            sealed = [n for n in self._personal_fields_of(event) if is_sealed(data.get(n))]
            if sealed:
                if key is _UNLOADED:
                    key = await self.keys.find(aggregate_id)
                data = dict(data)
                for name in sealed:
                    data[name] = self._open(key, data[name], aggregate_id)
            decoded.append(data)
        return decoded

    async def redact(self, customer_id: str, stored: Sequence[StoredEvent]) -> list[StoredEvent]:
        """The stream as an operator may see it: sealed values replaced by their status, never opened."""
        key: DataKey | None = _UNLOADED
        redacted: list[StoredEvent] = []
        for event in stored:
            sealed = [n for n in self._personal_fields_of(event) if is_sealed(event.data.get(n))]
            if sealed and key is _UNLOADED:
                key = await self.keys.find(customer_id)
            data = {**event.data, **{n: _status(key, event.data[n]) for n in sealed}}
            redacted.append(replace(event, data=data) if sealed else event)
        return redacted

    def _personal_fields_of(self, event: StoredEvent) -> tuple[str, ...]:
        return personal_fields(self.registry.model_for(event.event_type, event.schema_version))

    @staticmethod
    def _open(key: DataKey | None, sealed: dict[str, Any], customer_id: str) -> Any:
        if key is None or key.key_id != sealed_key_id(sealed):
            return None  # shredded: the key that sealed it no longer exists
        return json.loads(open_sealed(key, sealed, context=_context(customer_id)))


def _status(key: DataKey | None, sealed: dict[str, Any]) -> dict[str, str]:
    readable = key is not None and key.key_id == sealed_key_id(sealed)
    status: Literal["encrypted", "erased"] = "encrypted" if readable else "erased"
    return {"status": status, "algorithm": ALGORITHM}
