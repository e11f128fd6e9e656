"""Credit control: the customer_credit projection and the receivables view (one row per order).

The receivables of orders placed before this revision are back-filled from the event store, so the
credit check and the overdue sweep see them; customer_credit fills itself from crm.customers.v1 (the
orders.credit-terms consumer starts at the earliest offset).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from alembic import op

from shared.db.core_schema import run_script

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script(
        """
        CREATE TABLE customer_credit (
            customer_id    TEXT PRIMARY KEY,
            registered     BOOLEAN NOT NULL,
            active         BOOLEAN NOT NULL,
            credit_limit   NUMERIC(18, 4),
            limit_currency TEXT,
            payment_days   INTEGER,
            rating         TEXT,
            credit_version BIGINT NOT NULL,
            updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE TABLE receivables (
            order_id       TEXT PRIMARY KEY,
            customer_id    TEXT NOT NULL,
            currency       TEXT NOT NULL,
            total          NUMERIC(18, 4) NOT NULL,
            returned       NUMERIC(18, 4) NOT NULL,
            paid           NUMERIC(18, 4) NOT NULL,
            outstanding    NUMERIC(18, 4) NOT NULL CHECK (outstanding >= 0),
            status         TEXT NOT NULL,
            placed_at      TIMESTAMPTZ NOT NULL,
            due_date       DATE NOT NULL,
            payment_days   INTEGER NOT NULL,
            overdue_bucket TEXT,
            overdue_rank   SMALLINT NOT NULL DEFAULT 0,
            order_version  INTEGER NOT NULL,
            updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX receivables_customer_idx ON receivables (customer_id, placed_at DESC, order_id);
        CREATE INDEX receivables_unpaid_due_idx ON receivables (due_date, order_id) WHERE outstanding > 0;
        CREATE INDEX receivables_unpaid_customer_idx ON receivables (customer_id, currency) WHERE outstanding > 0;
        """
    )
    op.execute(_BACKFILL)


_BACKFILL = """
WITH placed AS (
    SELECT stream_id,
           data->>'order_id' AS order_id,
           data->>'customer_id' AS customer_id,
           data->'total'->>'currency' AS currency,
           (data->'total'->>'amount')::numeric AS total,
           (data->>'placed_at')::timestamptz AS placed_at,
           (data->>'due_date')::date AS due_date,
           (data->>'payment_days')::int AS payment_days,
           coalesce(data->>'status', 'placed') = 'credit_held' AS held_at_placing
      FROM events WHERE event_type = 'OrderPlaced'
), facts AS (
    SELECT stream_id,
           max(stream_version) AS version,
           coalesce(sum((data->'amount'->>'amount')::numeric)
                    FILTER (WHERE event_type = 'OrderReturned'), 0) AS returned,
           coalesce(sum((data->'amount'->>'amount')::numeric)
                    FILTER (WHERE event_type = 'PaymentReceived'), 0) AS paid,
           bool_or(event_type = 'OrderCancelled') AS cancelled,
           bool_or(event_type = 'OrderCreditReleased') AS released,
           max(CASE data->>'bucket' WHEN '1-30' THEN 1 WHEN '31-60' THEN 2 WHEN '61-90' THEN 3 WHEN '90+' THEN 4 END)
               FILTER (WHERE event_type = 'PaymentOverdue') AS overdue_rank
      FROM events WHERE aggregate_type = 'order' GROUP BY stream_id
), state AS (
    SELECT p.*, f.version, f.returned, f.paid, f.cancelled, p.held_at_placing AND NOT f.released AS on_hold,
           coalesce(f.overdue_rank, 0) AS overdue_rank,
           CASE WHEN f.cancelled THEN 0 ELSE greatest(0, p.total - f.returned - f.paid) END AS outstanding
      FROM placed p JOIN facts f USING (stream_id)
)
INSERT INTO receivables (order_id, customer_id, currency, total, returned, paid, outstanding, status, placed_at,
                         due_date, payment_days, overdue_bucket, overdue_rank, order_version)
SELECT order_id, customer_id, currency, total, returned, paid, outstanding,
       CASE WHEN cancelled THEN 'cancelled'
            WHEN total > 0 AND returned >= total THEN 'returned'
            WHEN on_hold THEN 'credit_held'
            WHEN paid > 0 AND outstanding = 0 THEN 'paid'
            ELSE 'placed' END,
       placed_at, due_date, payment_days,
       (ARRAY['1-30', '31-60', '61-90', '90+'])[nullif(overdue_rank, 0)], overdue_rank, version
  FROM state
"""


def downgrade() -> None:
    run_script("DROP TABLE receivables; DROP TABLE customer_credit;")
