"""The orders service's own read tables (created by migration 0003; SQL-readable by analysts).

* ``customer_credit`` — the projection of ``crm.customers.v1`` that credit control needs: may the
  customer order (registered, active) and its terms. Written by the ``orders.credit-terms`` consumer;
  ``credit_version`` is bumped by every change *and* by every order placed, so the order-placing
  transaction can tell that the position it checked is still the current one. ``terms_stream_version`` /
  ``status_stream_version`` are something else: the customer-stream version (``aggregate_version``) of the
  event that set the terms / ``active``, so that an older event arriving later leaves them alone (migration
  0005; 0 = nothing applied since, so the next event applies).
* ``receivables`` — one row per order: what it is worth, what was returned and paid, what is still owed
  and when it is due, and the last overdue bucket reported. Written by the repository hook in the same
  transaction as the order's events, so it is never behind the event store.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    func,
)

metadata = MetaData()

customer_credit = Table(
    "customer_credit",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("registered", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("credit_limit", Numeric(18, 4)),
    Column("limit_currency", Text),
    Column("payment_days", Integer),
    Column("rating", Text),
    Column("credit_version", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("terms_stream_version", Integer, nullable=False, server_default="0"),
    Column("status_stream_version", Integer, nullable=False, server_default="0"),
)

receivables = Table(
    "receivables",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("total", Numeric(18, 4), nullable=False),
    Column("returned", Numeric(18, 4), nullable=False),
    Column("paid", Numeric(18, 4), nullable=False),
    Column("outstanding", Numeric(18, 4), nullable=False),
    Column("status", Text, nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("payment_days", Integer, nullable=False),
    Column("overdue_bucket", Text),
    Column("overdue_rank", SmallInteger, nullable=False),
    Column("order_version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
