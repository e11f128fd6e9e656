"""The event catalogue as data: every contract event with its topic and JSON schemas.

Both renderings of the catalogue — docs/asyncapi.yaml and docs/events.md — are built from one
:class:`Catalogue`, so they cannot disagree. Schemas are pydantic's serialization-mode JSON schemas
(what goes on the wire); nested models and enums become named, shared schemas referenced as
``#/components/schemas/<Name>``, and a payload schema is named ``<EventType>.v<version>``.
Everything is ordered deterministically: topics in contract order, events in declaration order.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from shared.events import PRODUCER_MODULES, topics
from shared.events.deadletters import DeadLetter
from shared.events.envelope import Envelope, EventPayload
from shared.events.registry import REGISTRY, EventRegistry

REF_PREFIX = "#/components/schemas/"

JsonSchema = dict[str, Any]


@dataclass(frozen=True)
class ContractEvent:
    """One (event_type, schema_version) of the contract and where it travels."""

    event_type: str
    schema_version: int
    model: type[EventPayload]
    topic: str
    producer: str

    @property
    def name(self) -> str:
        """Name of its payload schema and AsyncAPI message: ``<EventType>.v<version>``."""
        return f"{self.event_type}.v{self.schema_version}"

    @property
    def summary(self) -> str:
        return doc_of(self.model).split("\n\n", 1)[0].replace("\n", " ")

    @property
    def description(self) -> str:
        return doc_of(self.model)


@dataclass
class Catalogue:
    events: list[ContractEvent]
    #: Named schemas: payloads (``X.v1``), shared models and enums (by class name), Envelope, DeadLetter.
    schemas: dict[str, JsonSchema] = field(default_factory=dict)

    def events_on(self, topic: str) -> list[ContractEvent]:
        return [e for e in self.events if e.topic == topic]


def doc_of(obj: object) -> str:
    """The docstring of ``obj`` as Markdown (reST double backticks become single ones)."""
    return _markdown(inspect.cleandoc(obj.__doc__ or "").strip())


def _markdown(text: str) -> str:
    return text.replace("``", "`")


def _tidy(schema: Any) -> Any:
    """Docstring-derived descriptions in Markdown, all the way down."""
    if isinstance(schema, dict):
        return {k: _markdown(v) if k == "description" and isinstance(v, str) else _tidy(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_tidy(v) for v in schema]
    return schema


def build_catalogue(registry: EventRegistry = REGISTRY) -> Catalogue:
    catalogue = Catalogue(events=contract_events(registry))
    for ev in catalogue.events:
        _add_model(catalogue.schemas, ev.model, ev.name)
    _add_model(catalogue.schemas, Envelope, "Envelope")
    _add_model(catalogue.schemas, DeadLetter, "DeadLetter")
    envelope = catalogue.schemas["Envelope"]
    envelope["properties"]["data"] = {
        "type": "object",
        "description": envelope["properties"]["data"]["description"],
    }
    catalogue.schemas.pop("EventPayload", None)
    catalogue.schemas = dict(sorted(catalogue.schemas.items()))
    return catalogue


def contract_events(registry: EventRegistry = REGISTRY) -> list[ContractEvent]:
    """Registered events ordered by topic (contract order), then declaration order, then version."""
    modules = {m.__name__: m for m in PRODUCER_MODULES}
    declared = [
        name
        for m in PRODUCER_MODULES
        for name, obj in vars(m).items()
        if isinstance(obj, type) and obj.__module__ == m.__name__
    ]
    events = []
    for model in registry.models():
        module = modules.get(model.__module__) or sys.modules[model.__module__]
        topic, producer = getattr(module, "TOPIC", None), getattr(module, "PRODUCER", None)
        if topic not in topics.CONTRACT_TOPICS or not producer:
            raise ValueError(f"{model.__qualname__}: its module {module.__name__} declares no contract TOPIC/PRODUCER")
        events.append(ContractEvent(model.event_type, model.schema_version, model, topic, producer))

    def position(ev: ContractEvent) -> int:
        return declared.index(ev.model.__name__) if ev.model.__name__ in declared else len(declared)

    # All versions of an event type sit together, where its first version was declared.
    first = {ev.event_type: min(position(e) for e in events if e.event_type == ev.event_type) for ev in events}

    def order(ev: ContractEvent) -> tuple[int, int, str, int]:
        return topics.CONTRACT_TOPICS.index(ev.topic), first[ev.event_type], ev.event_type, ev.schema_version

    return sorted(events, key=order)


def _add_model(schemas: dict[str, JsonSchema], model: type[BaseModel], name: str) -> None:
    """Add ``model``'s schema as ``name`` and its nested definitions under their own names."""
    schema = model.model_json_schema(mode="serialization", ref_template=REF_PREFIX + "{model}")
    for def_name, definition in schema.pop("$defs", {}).items():
        _put(schemas, def_name, definition)
    _put(schemas, name, schema)


def _put(schemas: dict[str, JsonSchema], name: str, schema: JsonSchema) -> None:
    schema = _tidy(schema)
    existing = schemas.get(name)
    if existing is not None and existing != schema:
        raise ValueError(f"two different schemas are both named {name!r}; give one of the models another class name")
    schemas[name] = schema
