"""The ``customer_keys`` table: find a customer's data key; create or delete it inside an append."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from customers.adapters.crypto import DataKey
from customers.adapters.tables import customer_keys
from shared.eventsourcing.store import ConcurrencyConflict, TransactionHook


class KeyCreatedConcurrently(ConcurrencyConflict):
    """Another append created this customer's data key first; retrying reads the winner's key."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer-{customer_id}", 0)
        self.args = (f"the data key of customer {customer_id!r} was created concurrently; retry",)


class CustomerKeys:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def find(self, customer_id: str) -> DataKey | None:
        query = select(customer_keys.c.key_id, customer_keys.c.data_key).where(
            customer_keys.c.customer_id == customer_id
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else DataKey(row.key_id, bytes(row.data_key))

    def changes(self, customer_id: str, *, delete_current: bool, create: DataKey | None) -> TransactionHook | None:
        """The key changes an append needs, to run in its transaction (delete first, then create)."""
        if not delete_current and create is None:
            return None

        async def apply(conn: AsyncConnection) -> None:
            if delete_current:
                await conn.execute(delete(customer_keys).where(customer_keys.c.customer_id == customer_id))
            if create is not None:
                await _insert(conn, customer_id, create)

        return apply


async def _insert(conn: AsyncConnection, customer_id: str, key: DataKey) -> None:
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(customer_keys).values(customer_id=customer_id, key_id=key.key_id, data_key=key.secret)
            )
    except IntegrityError as exc:
        # Our values are sealed under a key that would never be stored: refuse the whole append.
        # (Unreachable while appends to one stream are serialised by its version; kept as a guard.)
        raise KeyCreatedConcurrently(customer_id) from exc
