"""The tables every service database has: event store, outbox, inbox, consumer offsets.

Shapes follow DESIGN §2: ``events`` has primary key (stream_id, stream_version) so that a concurrent
append becomes a unique violation (a clean conflict), a unique ``event_id`` and a global ``position``.
``outbox`` rows are the exact bytes to publish. ``inbox`` and ``consumer_offsets`` are written in the
same transaction as a projection's effect (exactly once in effect).

Migrations must not import these objects (they are the *current* shape); see
:mod:`shared.db.core_schema` for the frozen migration steps.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("position", BigInteger, Identity(always=True), nullable=False, unique=True),
    Column("stream_id", Text, nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("aggregate_type", Text, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("event_type", Text, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("data", JSONB, nullable=False),
    Column("metadata", JSONB, nullable=False),
    PrimaryKeyConstraint("stream_id", "stream_version", name="events_pkey"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("message_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("topic", Text, nullable=False),
    Column("key", Text, nullable=True),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index("outbox_unsent_idx", "id", postgresql_where=text("sent_at IS NULL")),
    Index("outbox_sent_at_idx", "sent_at", postgresql_where=text("sent_at IS NOT NULL")),
)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer_group", Text, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consumer_group", "event_id", name="inbox_pkey"),
    Index("inbox_processed_at_idx", "processed_at"),
)

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("consumer_group", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # core schema v3: the record at next_offset - 1, checked on assignment (while it is that record's)
    Column("last_record_offset", BigInteger),
    Column("last_record_fingerprint", BigInteger),
    PrimaryKeyConstraint("consumer_group", "topic", "partition", name="consumer_offsets_pkey"),
)
