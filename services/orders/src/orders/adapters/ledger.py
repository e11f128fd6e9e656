"""PostgreSQL side of credit control: the customer credit projection and the receivables view.

Reads for the credit check come from one statement (one snapshot). Writes happen inside the event
store's append *statement* through repository hooks (:class:`~shared.eventsourcing.store.StatementHook`),
so placing an order costs two round trips: the check's read and the append.

* :meth:`PostgresCreditLedger.placing` — bumps the customer's ``credit_version`` *only if* it is still
  the version the check saw (else :class:`CreditCheckStale`: the transaction rolls back and the handler
  checks again), then upserts the order's receivable row. Two concurrent orders of one customer can
  therefore never both pass a limit that only one of them fits under.
* :meth:`PostgresCreditLedger.recording` — upserts the receivable row after any other command.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import Date, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from orders.adapters.tables import customer_credit, receivables
from orders.domain.credit import CreditTerms, Exposure, bucket_rank
from orders.domain.customer_credit import CustomerCredit
from orders.domain.errors import CreditCheckStale
from orders.domain.order import Order
from shared.db.engine import Transaction, driver_connection
from shared.db.statements import upsert_sql
from shared.eventsourcing.store import StatementHook, TransactionHook, chain_hooks

# The statements of the command path are plain SQL run through the driver (prepared once per connection).
_SNAPSHOT = """
    SELECT c.customer_id, c.registered, c.active, c.credit_limit, c.limit_currency, c.payment_days, c.rating,
           c.credit_version, c.terms_stream_version, c.status_stream_version,
           (SELECT coalesce(sum(r.outstanding), 0) FROM receivables r
             WHERE r.customer_id = c.customer_id AND r.currency = $2 AND r.outstanding > 0) AS unpaid,
           (SELECT min(r.due_date) FROM receivables r
             WHERE r.customer_id = c.customer_id AND r.outstanding > 0) AS oldest_unpaid_due
      FROM customer_credit c
     WHERE c.customer_id = $1
"""

_RECEIVABLE_COLUMNS = tuple(c.name for c in receivables.columns if c.name != "updated_at")
_receivable_args = itemgetter(*_RECEIVABLE_COLUMNS)  # a receivable row → $1…$n of _RECORD
# Both run inside the append statement (shared.eventsourcing.store.StatementHook): the receivable is
# written only if the append writes (and never goes back in version), and placing takes the next credit
# version only if it is still the one the check saw — else nothing at all is written and the handler
# checks again.
_RECORD = upsert_sql(
    receivables,
    _RECEIVABLE_COLUMNS,
    key=("order_id",),
    touch="updated_at",
    only_if="receivables.order_version < EXCLUDED.order_version",
)
_TAKE_CREDIT_VERSION = (
    "UPDATE customer_credit SET credit_version = credit_version + 1 "
    "WHERE customer_id = $1 AND credit_version = $2 AND {proceed} RETURNING 1"
)

# Unpaid orders whose current bucket (by days past due on :today) is later than the one last reported.
_OVERDUE_CANDIDATES = text(
    """
    SELECT order_id, due_date FROM receivables
     WHERE outstanding > 0
       AND due_date < :today
       AND (due_date, order_id) > (:after_due, :after_id)
       AND overdue_rank < CASE WHEN :today - due_date > 90 THEN 4
                               WHEN :today - due_date > 60 THEN 3
                               WHEN :today - due_date > 30 THEN 2
                               ELSE 1 END
     ORDER BY due_date, order_id
     LIMIT :limit
    """
).bindparams(bindparam("today", type_=Date), bindparam("after_due", type_=Date))


CENT = Decimal("0.01")
_AMOUNTS = ("total", "returned", "paid", "outstanding", "amount")


def amount(value: Decimal) -> Decimal:
    """A NUMERIC(18, 4) read back at the scale it was meant: 1100.0000 → 1100.00, 3.3950 → 3.395."""
    cents = value.quantize(CENT)
    return cents if cents == value else value.normalize()


def _amounts(row: Any) -> dict[str, Any]:
    return {k: amount(v) if k in _AMOUNTS and v is not None else v for k, v in row._mapping.items()}


def row_to_customer(row: Any) -> CustomerCredit:
    terms = None
    if row.credit_limit is not None:
        terms = CreditTerms(
            credit_limit=amount(row.credit_limit),
            currency=row.limit_currency,
            payment_days=row.payment_days,
            rating=row.rating,
        )
    return CustomerCredit(
        customer_id=row.customer_id,
        registered=row.registered,
        active=row.active,
        terms=terms,
        version=row.credit_version,
        terms_stream_version=row.terms_stream_version,
        status_stream_version=row.status_stream_version,
    )


def receivable_row(order: Order) -> dict[str, Any]:
    """The receivable row of ``order``, by column name."""
    return {
        "order_id": order.id,
        "customer_id": order.customer_id,
        "currency": order.currency,
        "total": order.total,
        "returned": order.returned,
        "paid": order.paid,
        "outstanding": order.outstanding,
        "status": order.status,
        "placed_at": order.placed_at,
        "due_date": order.due_date,
        "payment_days": order.payment_days,
        "overdue_bucket": None if order.overdue_bucket is None else str(order.overdue_bucket),
        "overdue_rank": bucket_rank(order.overdue_bucket),
        "order_version": order.version,
    }


# -- the customer credit projection (written by the consumer) ----------------------------------------------
async def load_customers(
    conn: AsyncConnection, customer_ids: Sequence[str], *, lock: bool
) -> dict[str, CustomerCredit]:
    query = select(customer_credit).where(customer_credit.c.customer_id.in_(customer_ids))
    if lock:
        query = query.with_for_update()
    return {row.customer_id: row_to_customer(row) for row in await conn.execute(query)}


async def save_customers(conn: AsyncConnection, customers: Sequence[CustomerCredit]) -> None:
    if not customers:
        return
    rows = [
        {
            "customer_id": c.customer_id,
            "registered": c.registered,
            "active": c.active,
            "credit_limit": c.terms.credit_limit if c.terms else None,
            "limit_currency": c.terms.currency if c.terms else None,
            "payment_days": c.terms.payment_days if c.terms else None,
            "rating": c.terms.rating if c.terms else None,
            "credit_version": c.version,
            "terms_stream_version": c.terms_stream_version,
            "status_stream_version": c.status_stream_version,
        }
        for c in customers
    ]
    stmt = insert(customer_credit)
    columns = [c.name for c in customer_credit.columns if c.name not in ("customer_id", "updated_at")]
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={**{name: stmt.excluded[name] for name in columns}, "updated_at": func.now()},
        ),
        rows,
    )


class _Row:
    """Attribute access to a driver record, as :func:`row_to_customer` reads SQLAlchemy rows."""

    __slots__ = ("_record",)

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        return self._record[name]


class PostgresCreditLedger:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # -- the credit check ------------------------------------------------------------------------
    async def position(
        self, customer_id: str, currency: str, *, tx: Transaction | None = None
    ) -> tuple[CustomerCredit | None, Exposure]:
        """The customer (None if unknown) and what it owes, read in one snapshot (in ``tx`` when given)."""
        if tx is not None:
            row = await tx.driver.fetchrow(_SNAPSHOT, customer_id, currency)
        else:
            async with driver_connection(self.engine) as driver:
                row = await driver.fetchrow(_SNAPSHOT, customer_id, currency)
        if row is None:
            return None, Exposure()
        exposure = Exposure(unpaid=amount(row["unpaid"]), oldest_unpaid_due=row["oldest_unpaid_due"])
        return row_to_customer(_Row(row)), exposure

    def placing(self, order: Order, checked_version: int) -> TransactionHook:
        customer_id = order.customer_id
        take = StatementHook(
            _TAKE_CREDIT_VERSION, (customer_id, checked_version), refused=lambda: CreditCheckStale(customer_id)
        )
        hook = chain_hooks(take, self.recording(order))
        assert hook is not None
        return hook

    def recording(self, order: Order) -> TransactionHook:
        return StatementHook(_RECORD, _receivable_args(receivable_row(order)))

    # -- the overdue sweep -----------------------------------------------------------------------
    async def overdue_candidates(
        self, today: date, *, limit: int, after: tuple[date, str] | None = None
    ) -> list[tuple[date, str]]:
        """(due date, order id) of unpaid orders that reached a bucket not yet reported, keyset-paged."""
        after_due, after_id = after or (date.min, "")
        params = {"today": today, "after_due": after_due, "after_id": after_id, "limit": limit}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_OVERDUE_CANDIDATES, params)).all()
        return [(row.due_date, row.order_id) for row in rows]

    # -- reads for the API -----------------------------------------------------------------------
    async def customer_orders(self, customer_id: str, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        where = receivables.c.customer_id == customer_id
        page = (
            select(receivables)
            .where(where)
            .order_by(receivables.c.placed_at.desc(), receivables.c.order_id)
            .limit(limit)
            .offset(offset)
        )
        async with self.engine.connect() as conn:
            total = int(await conn.scalar(select(func.count()).select_from(receivables).where(where)) or 0)
            rows = [_amounts(row) for row in await conn.execute(page)]
        return rows, total

    async def customer_credit(self, customer_id: str, today: date) -> dict[str, Any] | None:
        """The customer's credit position: terms, unpaid amounts per currency, oldest due date."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(customer_credit).where(customer_credit.c.customer_id == customer_id))
            ).first()
            if row is None:
                return None
            unpaid = (
                await conn.execute(
                    select(
                        receivables.c.currency,
                        func.sum(receivables.c.outstanding).label("amount"),
                        func.count().label("orders"),
                        func.min(receivables.c.due_date).label("oldest_due"),
                    )
                    .where(receivables.c.customer_id == customer_id, receivables.c.outstanding > 0)
                    .group_by(receivables.c.currency)
                    .order_by(receivables.c.currency)
                )
            ).all()
        return {"customer": row_to_customer(row), "unpaid": [_amounts(u) for u in unpaid], "today": today}
