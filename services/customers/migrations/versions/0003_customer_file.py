"""The customer file's own tables: per-customer data keys (crypto-shredding) and the directory.

Before this revision a customer stream could only hold its registration, so the directory is
backfilled from ``CustomerRegistered`` events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from shared.db.core_schema import run_script

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script(
        """
        CREATE TABLE customer_keys (
            customer_id TEXT PRIMARY KEY,
            key_id      UUID NOT NULL UNIQUE,
            data_key    BYTEA NOT NULL CHECK (octet_length(data_key) = 32),
            created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE TABLE customer_directory (
            customer_id   TEXT PRIMARY KEY,
            company_name  TEXT NOT NULL,
            region        TEXT NOT NULL,
            country       TEXT,
            industry      TEXT,
            size_band     TEXT,
            channel       TEXT,
            need_profile  TEXT,
            stage         TEXT NOT NULL,
            active        BOOLEAN NOT NULL,
            credit_rating TEXT,
            contacts      INTEGER NOT NULL,
            version       INTEGER NOT NULL,
            registered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX customer_directory_listing_idx ON customer_directory (registered_at, customer_id);
        CREATE INDEX customer_directory_region_idx ON customer_directory (region, registered_at);
        CREATE INDEX customer_directory_stage_idx ON customer_directory (stage, registered_at);
        INSERT INTO customer_directory (
            customer_id, company_name, region, country, industry, size_band, channel, need_profile,
            stage, active, credit_rating, contacts, version, registered_at, updated_at
        )
        SELECT data->>'customer_id', data->>'company_name', data->>'region', data->>'country',
               data->>'industry', data->>'size_band', data->>'channel', data->>'need_profile',
               coalesce(data->>'stage', 'prospect'), true, NULL, 0,
               (SELECT max(s.stream_version) FROM events s WHERE s.stream_id = e.stream_id),
               occurred_at, occurred_at
        FROM events e
        WHERE aggregate_type = 'customer' AND event_type = 'CustomerRegistered'
        """
    )


def downgrade() -> None:
    run_script("DROP TABLE customer_directory; DROP TABLE customer_keys")
