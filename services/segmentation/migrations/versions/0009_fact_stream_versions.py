"""Facts that events overwrite keep the stream version of the event that set them.

A re-driven dead letter (or any event that arrives after a later event of its own stream) used to
overwrite newer state: the last arrival won for the company name, region, deactivated, an order's credit
hold and overdue amount, and a complaint's status. Each of these now keeps the stream version
(``aggregate_version``) of the event that set it, and an older event leaves it alone
(``segmentation.domain.facts``):

* ``customer_segments``: ``company_name_version``, ``region_version``, ``deactivated_version``;
* ``customer_orders``: ``credit_version``; ``outstanding_amount`` and ``receivable_version`` — the
  outstanding amount as of the newest payment or overdue notice (an overdue notice that arrives after a
  later partial payment is overdue for what that payment left);
* ``customer_complaints``: ``status_version``.

Existing rows start at version 0 (the next event of the stream is applied, as before) and without an
outstanding amount. A consumer still on the code before this revision writes such state without its
version: run the migration, replace every consumer, then re-drive dead letters. ``rebuild`` leaves these columns out of its comparison: they record how facts were
reached, while the facts themselves are compared.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from shared.db.core_schema import run_script

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script(
        """
        ALTER TABLE customer_segments
            ADD COLUMN company_name_version INTEGER NOT NULL DEFAULT 0,
            ADD COLUMN region_version INTEGER NOT NULL DEFAULT 0,
            ADD COLUMN deactivated_version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE customer_orders
            ADD COLUMN credit_version INTEGER NOT NULL DEFAULT 0,
            ADD COLUMN outstanding_amount NUMERIC(18, 4),
            ADD COLUMN receivable_version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE customer_complaints ADD COLUMN status_version INTEGER NOT NULL DEFAULT 0;
        """
    )


def downgrade() -> None:
    run_script(
        """
        ALTER TABLE customer_complaints DROP COLUMN status_version;
        ALTER TABLE customer_orders
            DROP COLUMN receivable_version, DROP COLUMN outstanding_amount, DROP COLUMN credit_version;
        ALTER TABLE customer_segments
            DROP COLUMN deactivated_version, DROP COLUMN region_version, DROP COLUMN company_name_version;
        """
    )
