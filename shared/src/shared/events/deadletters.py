"""The value format of ``crm.deadletter.v1``: what a consumer could not apply, and why.

:func:`shared.messaging.deadletter.dead_letter` writes these; this model is their documented, checked
shape (docs/events.md, docs/asyncapi.yaml), so tools that inspect or replay dead letters can parse them.
Original bytes travel as UTF-8 text when they decode, else base64 — a dead letter never loses data,
except text that looks like personal data in a record refused for it, which is withheld (``withheld``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

#: Reasons a record is dead-lettered: the :class:`~shared.events.registry.InvalidEvent` codes,
#: ``key_mismatch`` when a valid event's record key is not its customer_id, and ``handler_failed`` when the
#: projection kept failing on a valid event.
DEADLETTER_REASONS: tuple[str, ...] = (
    "malformed_json",
    "malformed_envelope",
    "unknown_event_type",
    "unknown_schema_version",
    "invalid_payload",
    "key_mismatch",
    "handler_failed",
)


class EncodedBytes(BaseModel):
    """Original bytes: as text when they are valid UTF-8, otherwise base64."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    encoding: Literal["utf-8", "base64"] = Field(description="how ``data`` encodes the original bytes")
    data: str = Field(description="the bytes as UTF-8 text, or base64")


class OriginalRecord(BaseModel):
    """Where the dead-lettered record was read from."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    topic: str = Field(description="topic it was read from (as named on the broker)")
    partition: int = Field(ge=0, description="partition")
    offset: int = Field(ge=0, description="offset within the partition")
    timestamp_ms: int | None = Field(default=None, description="Kafka record timestamp, ms since the epoch")
    key: EncodedBytes | None = Field(default=None, description="the record key (normally the customer_id)")
    headers: list[tuple[str, EncodedBytes | None]] = Field(
        default_factory=list, description="the record headers as [name, value] pairs, in order"
    )


class DeadLetter(BaseModel):
    """A record a consumer could not apply: the reason, the exception and the original, byte for byte."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: Literal["DeadLetter"] = Field(description='always "DeadLetter"')
    format_version: Literal[1] = Field(description="version of this format")
    reason: str = Field(description="machine-readable reason: " + ", ".join(DEADLETTER_REASONS))
    detail: str = Field(description="human-readable detail, e.g. the failing fields (at most 4000 characters)")
    exception: str | None = Field(default=None, description="the exception, type and message, if one was raised")
    consumer_group: str = Field(description="consumer group that gave up on the record")
    original: OriginalRecord = Field(description="where the record came from")
    value: EncodedBytes | None = Field(
        description="the original record value; if ``withheld`` is not empty, the original JSON document with "
        'those strings replaced by "[withheld: personal data]" (not the original bytes: it cannot be re-sent as is)'
    )
    withheld: list[str] = Field(
        default_factory=list,
        description="JSON Pointers (RFC 6901) into the value of strings withheld because they look like personal "
        "data (an e-mail address, a phone number); only in a record refused for that reason. Added 2026-11; "
        "absent in older dead letters, read as empty",
    )
    dead_lettered_at: AwareDatetime = Field(description="when it was dead-lettered, UTC, RFC 3339")
