"""Outbox messages: the exact bytes a relay will publish, written in the business transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db.tables import outbox as outbox_table
from shared.events.envelope import Envelope


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    topic: str
    key: str | None
    value: bytes
    headers: tuple[tuple[str, str], ...] = ()
    message_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @classmethod
    def from_envelope(cls, envelope: Envelope, topic: str) -> OutboxMessage:
        """Key = customer_id (DESIGN §2); headers repeat the envelope's routing fields."""
        return cls(
            topic=topic,
            key=envelope.customer_id,
            value=envelope.to_json(),
            headers=tuple((k, v.decode()) for k, v in envelope.headers()),
            message_id=envelope.event_id,
        )

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in self.headers]


def outbox_columns(messages: Sequence[OutboxMessage]) -> tuple[list[Any], ...]:
    """The messages as column arrays (message_id, topic, key, value, headers JSON) for ``unnest``."""
    return (
        [m.message_id for m in messages],
        [m.topic for m in messages],
        [m.key for m in messages],
        [m.value for m in messages],
        [json.dumps(m.headers, separators=(",", ":")) for m in messages],
    )


async def write_outbox(conn: AsyncConnection, messages: Sequence[OutboxMessage]) -> None:
    if not messages:
        return
    await conn.execute(
        insert(outbox_table),
        [
            {
                "message_id": m.message_id,
                "topic": m.topic,
                "key": m.key,
                "value": m.value,
                "headers": [list(h) for h in m.headers],
            }
            for m in messages
        ],
    )
