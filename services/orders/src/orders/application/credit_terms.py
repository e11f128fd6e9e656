"""The ``orders.credit-terms`` projection: ``crm.customers.v1`` → the ``customer_credit`` table.

Runs inside the shared consumer's transaction (inbox dedupe + offsets in the same commit, so exactly
once in effect): lock the batch's customers' rows, fold the events (pure domain code), upsert the rows
that changed. It emits nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from orders.adapters.ledger import load_customers, save_customers
from orders.domain.customer_credit import CustomerCredit, apply_customer_event
from shared.events.envelope import Envelope
from shared.messaging.outbox import OutboxMessage


class CreditTermsProjector:
    async def apply(self, conn: AsyncConnection, events: Sequence[Envelope]) -> Sequence[OutboxMessage]:
        if not events:
            return []
        ids = sorted({e.customer_id for e in events})
        before = await load_customers(conn, ids, lock=True)
        states = dict(before)
        for envelope in events:
            current = states.get(envelope.customer_id) or CustomerCredit(customer_id=envelope.customer_id)
            states[envelope.customer_id] = apply_customer_event(current, envelope.data)
        await save_customers(conn, [s for cid, s in states.items() if before.get(cid) != s and s.version > 0])
        return []
