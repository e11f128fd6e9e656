"""customer_segments: the per-customer projection.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

from shared.db.core_schema import run_script

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script(
        """
        CREATE TABLE customer_segments (
            customer_id          TEXT PRIMARY KEY,
            registered           BOOLEAN NOT NULL,
            company_name         TEXT,
            region               TEXT,
            stage                TEXT,
            orders_count         INTEGER NOT NULL,
            cancelled_orders     INTEGER NOT NULL,
            gross_revenue        NUMERIC(18, 4) NOT NULL,
            cancelled_amount     NUMERIC(18, 4) NOT NULL,
            returned_amount      NUMERIC(18, 4) NOT NULL,
            net_revenue          NUMERIC(18, 4) NOT NULL,
            currency             TEXT,
            first_order_at       TIMESTAMPTZ,
            last_order_at        TIMESTAMPTZ,
            complaints_total     INTEGER NOT NULL,
            open_complaints      INTEGER NOT NULL,
            value_tier           TEXT NOT NULL,
            events_applied       INTEGER NOT NULL,
            last_event_at        TIMESTAMPTZ,
            segmentation_version INTEGER NOT NULL,
            updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX customer_segments_tier_idx ON customer_segments (value_tier);
        CREATE INDEX customer_segments_region_idx ON customer_segments (region);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE customer_segments")
