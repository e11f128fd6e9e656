"""The public event contract (DESIGN §3): envelope, payload models, topics and the one parser.

Importing this package registers every contract payload in :data:`REGISTRY`, one module per producer
(``customers``, ``orders``, ``feedback``, ``segmentation``); each module declares its ``TOPIC`` and
``PRODUCER``. :func:`topic_for` answers which contract topic an event type travels on.
"""

from __future__ import annotations

from types import ModuleType

from shared.events import customers, feedback, orders, segmentation
from shared.events.envelope import DEFAULT_CURRENCY, Envelope, EventPayload, Money
from shared.events.registry import REGISTRY, EventRegistry, InvalidEvent, event, parse_envelope
from shared.events.topics import CONTRACT_TOPICS, CUSTOMERS, DEADLETTER, FEEDBACK, ORDERS, SEGMENTATION, Topics

#: The payload modules, one per producing service.
PRODUCER_MODULES: tuple[ModuleType, ...] = (customers, orders, feedback, segmentation)

#: Producer (service name) → the contract topic it publishes on.
TOPIC_OF_PRODUCER: dict[str, str] = {m.PRODUCER: m.TOPIC for m in PRODUCER_MODULES}

_MODULE_OF_EVENT_TYPE: dict[str, ModuleType] = {
    model.event_type: module
    for module in PRODUCER_MODULES
    for model in REGISTRY.models()
    if model.__module__ == module.__name__
}


def producer_for(payload: type[EventPayload] | EventPayload | str) -> str:
    """The service that publishes ``payload`` (a payload class, instance or event type name)."""
    return _module_for(payload).PRODUCER


def topic_for(payload: type[EventPayload] | EventPayload | str) -> str:
    """The contract topic of ``payload`` (a payload class, instance or event type name)."""
    return _module_for(payload).TOPIC


def _module_for(payload: type[EventPayload] | EventPayload | str) -> ModuleType:
    event_type = payload if isinstance(payload, str) else payload.event_type
    try:
        return _MODULE_OF_EVENT_TYPE[event_type]
    except KeyError:
        raise KeyError(f"{event_type!r} is not an event type of the contract") from None


__all__ = [
    "CONTRACT_TOPICS",
    "CUSTOMERS",
    "DEADLETTER",
    "DEFAULT_CURRENCY",
    "FEEDBACK",
    "ORDERS",
    "PRODUCER_MODULES",
    "REGISTRY",
    "SEGMENTATION",
    "TOPIC_OF_PRODUCER",
    "Envelope",
    "EventPayload",
    "EventRegistry",
    "InvalidEvent",
    "Money",
    "Topics",
    "customers",
    "event",
    "feedback",
    "orders",
    "parse_envelope",
    "producer_for",
    "segmentation",
    "topic_for",
]
