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
    WithJsonSchema,
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
    # The wire format is a string in both directions; without this the validation schema would say
    # "number or string" although numbers with a fraction (floats) are refused.
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["1234.50"]}),
]

DEFAULT_CURRENCY = "CNY"


class Money(BaseModel):
    """An amount of money: a decimal string plus an ISO-4217 currency code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: DecimalString = Field(description='decimal amount as a string, e.g. "1234.50"; never a JSON number')
    currency: str = Field(default=DEFAULT_CURRENCY, pattern=r"^[A-Z]{3}$", description="ISO-4217 currency code")


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

    event_id: uuid.UUID = Field(description="unique id of the event; consumers deduplicate by it")
    event_type: str = Field(min_length=1, max_length=100, description="past-tense name, e.g. OrderPlaced")
    schema_version: int = Field(ge=1, description="version of the payload schema of this event type")
    occurred_at: AwareDatetime = Field(description="when it happened, UTC, RFC 3339")
    producer: str = Field(min_length=1, max_length=100, description="service that published it")
    aggregate_type: str = Field(min_length=1, max_length=100, description="kind of aggregate, e.g. order")
    aggregate_id: str = Field(min_length=1, max_length=200, description="id of the aggregate within its kind")
    aggregate_version: int = Field(ge=1, description="position of the event in its aggregate's stream (1-based)")
    customer_id: str = Field(min_length=1, max_length=200, description="the customer; also the Kafka message key")
    correlation_id: str = Field(
        min_length=1, max_length=200, description="id of the request or flow that led here, kept along causal chains"
    )
    causation_id: str | None = Field(
        default=None, max_length=200, description="event_id of the event that caused this one, if any"
    )
    data: SerializeAsAny[EventPayload] = Field(description="the payload, per (event_type, schema_version)")

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
