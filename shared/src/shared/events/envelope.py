"""The public event envelope and the base of every payload model (DESIGN §3).

An event on the bus is an :class:`Envelope` serialised as JSON; its ``data`` is an instance of the
:class:`EventPayload` subclass registered for ``(event_type, schema_version)``. Envelopes and payloads
are frozen: an event, once built, never changes. Unknown extra fields are ignored on parse so that
producers can add optional fields without breaking existing consumers (additive evolution).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializeAsAny,
    field_validator,
)


def _reject_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("money must be a decimal string, never a float")
    return value


#: A decimal amount that arrives and leaves as a JSON string ("1234.50"); floats are refused.
DecimalString = Annotated[
    Decimal,
    BeforeValidator(_reject_float),
    Field(allow_inf_nan=False),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
]

DEFAULT_CURRENCY = "CNY"


class Money(BaseModel):
    """An amount of money: a decimal string plus an ISO-4217 currency code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: DecimalString
    currency: str = Field(default=DEFAULT_CURRENCY, pattern=r"^[A-Z]{3}$")


class EventPayload(BaseModel):
    """Base of every event payload. Subclasses set ``event_type`` and ``schema_version``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1


def utc_now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """The envelope every public event travels in. Field names and meaning are a public promise."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: uuid.UUID
    event_type: str = Field(min_length=1, max_length=100)
    schema_version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1, max_length=100)
    aggregate_type: str = Field(min_length=1, max_length=100)
    aggregate_id: str = Field(min_length=1, max_length=200)
    aggregate_version: int = Field(ge=1)
    customer_id: str = Field(min_length=1, max_length=200)
    correlation_id: str = Field(min_length=1, max_length=200)
    causation_id: str | None = Field(default=None, max_length=200)
    data: SerializeAsAny[EventPayload]

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def wrap(
        cls,
        payload: EventPayload,
        *,
        producer: str,
        aggregate_type: str,
        aggregate_id: str,
        aggregate_version: int,
        customer_id: str,
        correlation_id: str,
        causation_id: str | None = None,
        occurred_at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Envelope:
        """Build the envelope for ``payload``; type and version come from the payload's class."""
        return cls(
            event_id=event_id or uuid.uuid4(),
            event_type=payload.event_type,
            schema_version=payload.schema_version,
            occurred_at=occurred_at or utc_now(),
            producer=producer,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            aggregate_version=aggregate_version,
            customer_id=customer_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
            data=payload,
        )

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers that repeat the envelope's routing fields (DESIGN §3)."""
        return [
            ("event_id", str(self.event_id).encode()),
            ("event_type", self.event_type.encode()),
            ("schema_version", str(self.schema_version).encode()),
            ("correlation_id", self.correlation_id.encode()),
        ]

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()
