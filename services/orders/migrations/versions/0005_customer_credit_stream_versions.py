"""customer_credit remembers which customer event set its terms and its status.

``terms_stream_version`` / ``status_stream_version``: the customer-stream version (the envelope's
``aggregate_version``) of the CustomerCreditTermsSet that set the terms and of the CustomerDeactivated /
CustomerReactivated that set ``active``. The orders.credit-terms consumer leaves a piece of state alone
when an event older than the one that set it arrives later (a dead letter re-driven after the customer's
later events), so the live projection ends where a replay does (docs/orders.md, "Who may order").

Not to be confused with ``credit_version``, the optimistic-concurrency counter of the credit check.

Rows written before this revision get 0: which event set their state is not known here (orders cannot read
the customers' event store), and 0 is below every real version (they start at 1), so the next event for
them always applies — exactly what the consumer did before. A replay of crm.customers.v1 (docs/orders.md,
"Known limits") fills in the true versions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from shared.db.core_schema import run_script

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No semicolons inside the comments: run_script splits the script on them.
    run_script(
        """
        ALTER TABLE customer_credit
            ADD COLUMN terms_stream_version  INTEGER NOT NULL DEFAULT 0,
            ADD COLUMN status_stream_version INTEGER NOT NULL DEFAULT 0;
        COMMENT ON COLUMN customer_credit.terms_stream_version IS
            'customer-stream version (aggregate_version) of the CustomerCreditTermsSet that set the terms, 0 = none or set before this column existed (the next one applies)';
        COMMENT ON COLUMN customer_credit.status_stream_version IS
            'customer-stream version of the CustomerDeactivated or CustomerReactivated that set active, 0 = none or set before this column existed (the next one applies)';
        """
    )


def downgrade() -> None:
    run_script("ALTER TABLE customer_credit DROP COLUMN terms_stream_version, DROP COLUMN status_stream_version;")
