"""Sums of amounts are not bounded by what one amount may be.

One amount is at most 14 digits before the point (NUMERIC(18, 4), the contract's decimal string), but a
customer's lifetime totals, trailing-window net contribution, spend windows, average order value and
overdue total add amounts up: three orders of 6 × 10¹³ overflowed ``gross_revenue``, and the consumer
dead-lettered the order that did it ("numeric field overflow"). These columns become NUMERIC(1000, 4) —
PostgreSQL's widest precision with a fixed scale, 996 digits before the point — so stored values keep
their 4 places (a rebuild's checksums compare the text of the rows). So does
``customer_orders.returned_amount``, the sum of an order's returns: the contract bounds each return, not
their sum. The other fact columns (one order's amount, its cancellation, its overdue amount) keep
NUMERIC(18, 4): each is one amount of the contract.

Raising the precision with the same scale rewrites no rows (a catalogue change; the contribution index
is rebuilt). Downgrading fails with "numeric field overflow" while any of these values is 10¹⁴ or more.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from shared.db.core_schema import run_script

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: The columns of ``customer_segments`` that hold a sum of amounts or a figure derived from sums.
TOTALS = (
    "gross_revenue",
    "cancelled_amount",
    "returned_amount",
    "net_revenue",
    "net_contribution",
    "average_order_value",
    "spend_last_90",
    "spend_previous_90",
    "overdue_amount",
)


def _alter(column_type: str) -> str:
    changes = ", ".join(f"ALTER COLUMN {column} TYPE {column_type}" for column in TOTALS)
    return (
        f"ALTER TABLE customer_segments {changes};"
        f"ALTER TABLE customer_orders ALTER COLUMN returned_amount TYPE {column_type}"
    )


def upgrade() -> None:
    run_script(_alter("NUMERIC(1000, 4)"))


def downgrade() -> None:
    run_script(_alter("NUMERIC(18, 4)"))
