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
from typing import Annotated, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    PlainSerializer,
    SerializeAsAny,
    WithJsonSchema,
)
from pydantic_core import core_schema


def _checked_first(accepted: core_schema.CoreSchema) -> GetPydanticSchema:
    """Annotation: the input must pass ``accepted`` before the annotated type's own validation.

    Like a ``BeforeValidator``, but all in pydantic-core (no Python call per value): the parser's fast
    path validates every amount and instant of every event (benchmarks/segmentation_throughput.py)."""
    return GetPydanticSchema(lambda source, handler: core_schema.chain_schema([accepted, handler(source)]))


#: The wire form of an amount: at most 14 digits before the point and 4 after — what the services'
#: NUMERIC(18, 4) columns hold, so that a valid event can always be stored.
DECIMAL_PATTERN = r"^-?[0-9]{1,14}(\.[0-9]{1,4})?$"

#: The wire form of a total (a sum of amounts, or a figure derived from sums): like
#: :data:`DECIMAL_PATTERN` with any number of digits before the point, since a sum of amounts that each
#: fit NUMERIC(18, 4) need not fit it itself. Still at most 4 after the point: no sum of amounts has more.
DECIMAL_TOTAL_PATTERN = r"^-?[0-9]+(\.[0-9]{1,4})?$"


def _decimal_text(pattern: str, max_digits: int | None, size: str) -> GetPydanticSchema:
    """Annotation: the input must be a string matching ``pattern`` or, from Python, a ``Decimal`` of at
    most ``max_digits`` digits (None: any) and 4 places; ``size`` completes the error message."""
    return _checked_first(
        core_schema.union_schema(
            # The string first (what the parser sees): left to right, a match ends the union at once, and the
            # pattern bounds it. Only a Decimal from Python pays for the digit count (~0.4 µs an amount).
            [
                core_schema.str_schema(pattern=pattern, strict=True),
                core_schema.decimal_schema(strict=True, max_digits=max_digits, decimal_places=4, allow_inf_nan=False),
            ],
            mode="left_to_right",
            custom_error_type="decimal_string",
            custom_error_message='should be a decimal string such as "1234.50", never a JSON number: digits '
            f"with an optional point, {size} (no exponent, blanks or underscores)",
        )
    )


def _plain(value: Decimal) -> str:
    return format(value, "f")


#: A decimal amount that arrives and leaves as a JSON string ("1234.50"). On input only a string matching
#: :data:`DECIMAL_PATTERN` (or, from Python, a ``Decimal`` of that size) is accepted: never a JSON number,
#: an exponent ("1e3"), blanks, underscores, ".5" or "5.".
DecimalString = Annotated[
    Decimal,
    Field(allow_inf_nan=False),
    _decimal_text(DECIMAL_PATTERN, 18, "at most 14 digits before it and 4 after"),
    PlainSerializer(_plain, return_type=str, when_used="json"),
    # The wire format is a string in both directions (the validation schema would otherwise say "any").
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN, "examples": ["1234.50"]}),
]

#: A total — a sum of amounts or a figure derived from sums (a customer's lifetime revenue, net
#: contribution, a tier's revenue, a cut point) — in the string form of :data:`DecimalString` without its
#: bound on the digits before the point (:data:`DECIMAL_TOTAL_PATTERN`): every valid DecimalString is a
#: valid DecimalTotal, not the other way round. A reader keeps it in a NUMERIC column without that bound
#: (segmentation's are NUMERIC(1000, 4)), never in NUMERIC(18, 4).
DecimalTotal = Annotated[
    Decimal,
    Field(allow_inf_nan=False),
    _decimal_text(DECIMAL_TOTAL_PATTERN, None, "at most 4 digits after it"),
    PlainSerializer(_plain, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_TOTAL_PATTERN, "examples": ["1234.50"]}),
]

#: The earliest instant the contract accepts: nothing a wholesale CRM records happened before (an order
#: of 0001-01-01 is a typing mistake; asyncpg would store it as -infinity). Requests are held to it too
#: (``shared.clock.GivenInstant``).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
#: Past the latest instant: every instant before it has a UTC form (9999-12-31T23:00-05:00 has none).
_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: An instant: an RFC 3339 date-time string with a UTC offset (or, from Python, an aware datetime), from
#: :data:`EARLIEST` on, normalised to UTC. Naive date-times and numbers (Unix epochs) are refused.
Instant = Annotated[
    AwareDatetime,
    Field(ge=EARLIEST, lt=_END_OF_TIME),
    _checked_first(
        core_schema.union_schema(
            [
                core_schema.str_schema(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]", strict=True),
                core_schema.is_instance_schema(datetime),
            ],
            mode="left_to_right",
            custom_error_type="instant",
            custom_error_message="should be an RFC 3339 date-time string with a UTC offset, such as "
            '"2026-03-01T09:30:00Z" (not a number)',
        )
    ),
    AfterValidator(_to_utc),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

DEFAULT_CURRENCY = "CNY"


class MoneyTotal(BaseModel):
    """A sum of amounts, or a figure derived from sums: Money with any number of digits before the point."""

    # A Money given for a total becomes a MoneyTotal, so an event equals itself parsed back.
    model_config = ConfigDict(frozen=True, extra="forbid", revalidate_instances="subclass-instances")

    amount: DecimalTotal = Field(
        description='decimal total as a string, e.g. "123456789012345.50"; never a JSON number; any number of '
        "digits before the point, at most 4 after",
    )
    currency: str = Field(default=DEFAULT_CURRENCY, pattern=r"^[A-Z]{3}$", description="ISO-4217 currency code")


# Every valid Money is a valid MoneyTotal, and a Money instance is one: a producer may pass a Money where
# a total is expected (segmentation's events took Money before their totals were unbounded).
class Money(MoneyTotal):
    """An amount of money: a decimal string plus an ISO-4217 currency code."""

    amount: DecimalString = Field(
        description='decimal amount as a string, e.g. "1234.50"; never a JSON number; at most 14 digits before '
        "the point and 4 after",
    )


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
    schema_version: int = Field(ge=1, strict=True, description="version of the payload schema of this event type")
    occurred_at: Instant = Field(description="when it happened, UTC, RFC 3339")
    producer: str = Field(min_length=1, max_length=100, description="service that published it")
    aggregate_type: str = Field(min_length=1, max_length=100, description="kind of aggregate, e.g. order")
    aggregate_id: str = Field(min_length=1, max_length=200, description="id of the aggregate within its kind")
    aggregate_version: int = Field(
        ge=1, strict=True, description="position of the event in its aggregate's stream (1-based)"
    )
    customer_id: str = Field(min_length=1, max_length=200, description="the customer; also the Kafka message key")
    correlation_id: str = Field(
        min_length=1, max_length=200, description="id of the request or flow that led here, kept along causal chains"
    )
    causation_id: str | None = Field(
        default=None, max_length=200, description="event_id of the event that caused this one, if any"
    )
    data: SerializeAsAny[EventPayload] = Field(description="the payload, per (event_type, schema_version)")

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
        mismatch = customer_mismatch(customer_id, payload)
        if mismatch is not None:
            raise ValueError(mismatch)
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


def customer_mismatch(customer_id: str, payload: EventPayload) -> str | None:
    """Why ``payload`` cannot travel in an envelope of ``customer_id``, or None.

    Events that start a customer's stream repeat customer_id in their payload (docs/events.md), and the
    two must be equal. Checked by the parser and by :meth:`Envelope.wrap` rather than by a model validator:
    that would cost every parse a call into Python (~2 µs), for four event types."""
    in_data = payload.__dict__.get("customer_id")  # a field value, or None: no such field
    if in_data is None or in_data == customer_id:
        return None
    return f"customer_id {customer_id!r} differs from data.customer_id {in_data!r}; they must be equal"
