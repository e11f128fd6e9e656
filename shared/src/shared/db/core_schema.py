"""Frozen migration steps for the core tables, shared by every service's Alembic history.

Each function is one version of the core schema and never changes once released; a later change to
the core tables is a new function (``upgrade_v2``) that services call from a new revision.
"""

from __future__ import annotations

from alembic import op

__all__ = ["downgrade_v1", "downgrade_v2", "downgrade_v3", "run_script", "upgrade_v1", "upgrade_v2", "upgrade_v3"]


def run_script(script: str) -> None:
    """Execute a script statement by statement (asyncpg runs one statement per call)."""
    for statement in script.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade_v1() -> None:
    run_script(
        """
        CREATE TABLE events (
            position       BIGINT GENERATED ALWAYS AS IDENTITY NOT NULL UNIQUE,
            stream_id      TEXT NOT NULL,
            stream_version INTEGER NOT NULL CHECK (stream_version >= 1),
            aggregate_type TEXT NOT NULL,
            event_id       UUID NOT NULL UNIQUE,
            event_type     TEXT NOT NULL,
            schema_version INTEGER NOT NULL,
            occurred_at    TIMESTAMPTZ NOT NULL,
            recorded_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
            data           JSONB NOT NULL,
            metadata       JSONB NOT NULL,
            CONSTRAINT events_pkey PRIMARY KEY (stream_id, stream_version)
        );
        CREATE TABLE outbox (
            id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            message_id  UUID NOT NULL UNIQUE,
            topic       TEXT NOT NULL,
            key         TEXT,
            value       BYTEA NOT NULL,
            headers     JSONB NOT NULL,
            created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
            sent_at     TIMESTAMPTZ
        );
        CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;
        CREATE INDEX outbox_sent_at_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
        CREATE TABLE inbox (
            consumer_group TEXT NOT NULL,
            event_id       UUID NOT NULL,
            processed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
            CONSTRAINT inbox_pkey PRIMARY KEY (consumer_group, event_id)
        );
        CREATE INDEX inbox_processed_at_idx ON inbox (processed_at);
        CREATE TABLE consumer_offsets (
            consumer_group TEXT NOT NULL,
            topic          TEXT NOT NULL,
            partition      INTEGER NOT NULL,
            next_offset    BIGINT NOT NULL,
            updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
            CONSTRAINT consumer_offsets_pkey PRIMARY KEY (consumer_group, topic, partition)
        );
        """
    )


def downgrade_v1() -> None:
    run_script("DROP TABLE consumer_offsets; DROP TABLE inbox; DROP TABLE outbox; DROP TABLE events;")


def upgrade_v2() -> None:
    """``idempotency_keys``: one row per (scope, key) of a command API (see :mod:`shared.idempotency`).

    The row is inserted in the command's append transaction (status NULL = in flight or response not
    yet stored) and completed with the response right after; rows are purged by ``created_at``."""
    run_script(
        """
        CREATE TABLE idempotency_keys (
            scope          TEXT NOT NULL,
            key            TEXT NOT NULL,
            request_hash   TEXT NOT NULL,
            status_code    INTEGER,
            response_body  BYTEA,
            created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
            completed_at   TIMESTAMPTZ,
            CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, key),
            CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 200)
        );
        CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
        """
    )


def downgrade_v2() -> None:
    run_script("DROP TABLE idempotency_keys;")


def upgrade_v3() -> None:
    """``consumer_offsets.last_record_fingerprint``: an 8-byte blake2b of the key and value of the record at
    ``last_record_offset`` (:func:`shared.messaging.positions.fingerprint`), both written with the offset.

    On assignment the consumer compares it with the record Kafka now holds there: another record means
    the partition's log was replaced, and it is read again from its beginning. It is compared only while
    ``last_record_offset = next_offset - 1``: NULL for rows stored before this step and for offsets set
    back to 0, and a row whose offset was moved by code that does not know the columns (a replica not yet
    upgraded) is not compared either — its fingerprint would belong to an older record."""
    run_script(
        """
        ALTER TABLE consumer_offsets ADD COLUMN last_record_offset BIGINT;
        ALTER TABLE consumer_offsets ADD COLUMN last_record_fingerprint BIGINT;
        COMMENT ON COLUMN consumer_offsets.last_record_offset IS
            'offset of the record last_record_fingerprint was taken from';
        COMMENT ON COLUMN consumer_offsets.last_record_fingerprint IS
            'blake2b-64 of key and value of that record (compared on assignment while it is next_offset - 1)';
        """
    )


def downgrade_v3() -> None:
    run_script(
        "ALTER TABLE consumer_offsets DROP COLUMN last_record_fingerprint; "
        "ALTER TABLE consumer_offsets DROP COLUMN last_record_offset;"
    )
