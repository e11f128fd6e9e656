"""Base class of event-sourced aggregates.

An aggregate's state is the fold of its events. Command methods check rules and *record* new events
(``self._record(event)``), which applies them at once and keeps them pending until the repository
appends them. ``version`` is the number of events the aggregate has seen, stored or pending.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Self

from pydantic import BaseModel

from shared.events.registry import EventRegistry


class DomainError(Exception):
    """A command that the rules refuse; the API maps it to 409/422 with the message."""


class FieldRuleViolation(DomainError):
    """A refusal caused by one input field (an overpayment, an unknown customer, a date in the future),
    where a plain :class:`DomainError` is a rule about the aggregate's *state*: HTTP 422 with a field
    error in FastAPI's shape whose ``type`` is :attr:`code` at :attr:`loc` (the field, or its path in the
    body, e.g. ``("steps", 2, "at")``), instead of 409."""

    def __init__(self, message: str, *, field: str, code: str, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.value = value
        self.loc: tuple[str | int, ...] = (field,)

    def inside(self, *outer: str | int) -> FieldRuleViolation:
        """The same refusal about a field nested in ``outer`` (e.g. ``"steps", 2``)."""
        self.loc = (*outer, *self.loc)
        return self


class Aggregate:
    #: Stream prefix and envelope ``aggregate_type``, e.g. "order".
    aggregate_type: ClassVar[str]
    #: (event_type, schema_version) → model of the events this aggregate stores.
    event_registry: ClassVar[EventRegistry]

    def __init__(self, aggregate_id: str) -> None:
        self.id = aggregate_id
        self.version = 0
        self._pending: list[BaseModel] = []

    # -- to implement -------------------------------------------------------------------------
    def _apply(self, event: BaseModel) -> None:
        """Fold one event into the state (no rules here: events are facts)."""
        raise NotImplementedError

    @property
    def customer_id(self) -> str:
        """The customer this aggregate belongs to: the Kafka key of its public events."""
        raise NotImplementedError

    # -- mechanics ------------------------------------------------------------------------------
    @classmethod
    def stream_id_for(cls, aggregate_id: str) -> str:
        return f"{cls.aggregate_type}-{aggregate_id}"

    @property
    def stream_id(self) -> str:
        return self.stream_id_for(self.id)

    @classmethod
    def replay(cls, aggregate_id: str, events: Iterable[BaseModel]) -> Self:
        aggregate = cls(aggregate_id)
        for event in events:
            aggregate._apply(event)
            aggregate.version += 1
        return aggregate

    def _record(self, event: BaseModel) -> None:
        self._apply(event)
        self.version += 1
        self._pending.append(event)

    @property
    def pending_events(self) -> list[BaseModel]:
        return list(self._pending)

    @property
    def stored_version(self) -> int:
        """The version of the stream before the pending events: the expected version on append."""
        return self.version - len(self._pending)

    def mark_saved(self) -> None:
        self._pending.clear()
