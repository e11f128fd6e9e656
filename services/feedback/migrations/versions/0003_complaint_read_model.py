"""complaints: the complaint read model (one row per complaint) for the SLA sweep and listings.

Written in the same transaction as each complaint append (feedback.adapters.postgres). Complaints
filed before this revision get their row from ``python -m feedback reindex``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from shared.db.core_schema import run_script

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script(
        """
        CREATE TABLE complaints (
            complaint_id       TEXT PRIMARY KEY,
            customer_id        TEXT NOT NULL,
            status             TEXT NOT NULL
                CHECK (status IN ('open', 'acknowledged', 'resolved', 'reopened', 'closed')),
            severity           TEXT NOT NULL,
            category           TEXT NOT NULL,
            order_id           TEXT,
            filed_at           TIMESTAMPTZ NOT NULL,
            acknowledge_by     TIMESTAMPTZ NOT NULL,
            resolve_by         TIMESTAMPTZ NOT NULL,
            escalations        INTEGER NOT NULL CHECK (escalations >= 0),
            next_escalation_at TIMESTAMPTZ,
            version            INTEGER NOT NULL CHECK (version >= 1),
            updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX complaints_customer_idx ON complaints (customer_id, filed_at DESC, complaint_id);
        CREATE INDEX complaints_due_idx ON complaints (next_escalation_at, complaint_id)
            WHERE next_escalation_at IS NOT NULL;
        """
    )


def downgrade() -> None:
    run_script("DROP TABLE complaints;")
