"""Outbox messages: the exact bytes a relay will publish, written in the business transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db.engine import driver_of
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


# One statement for any number of messages, prepared once per connection by the driver.
_INSERT = (
    "INSERT INTO outbox (message_id, topic, key, value, headers) "
    "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::jsonb[])"
)


async def write_outbox(conn: AsyncConnection | asyncpg.Connection, messages: Sequence[OutboxMessage]) -> None:
    """Insert ``messages`` into the outbox in ``conn``'s transaction (a SQLAlchemy connection or the driver).

    On a SQLAlchemy connection the insert goes straight to its asyncpg driver — same session, same
    transaction, no SQL compilation — once that transaction has begun on the server. Before that
    (SQLAlchemy sends BEGIN lazily, with the first statement), the driver alone would write outside it,
    so the same SQL then goes through SQLAlchemy, which begins the transaction first."""
    if not messages:
        return
    columns = outbox_columns(messages)
    if isinstance(conn, asyncpg.Connection):
        await conn.execute(_INSERT, *columns)
        return
    driver = await driver_of(conn)
    if driver.is_in_transaction() or not conn.in_transaction():
        await driver.execute(_INSERT, *columns)
    else:
        await conn.exec_driver_sql(_INSERT, columns)
