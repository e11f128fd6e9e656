"""The ``orders.credit-terms`` projection: ``crm.customers.v1`` → the ``customer_credit`` table.

Runs inside the shared consumer's transaction (inbox dedupe + offsets in the same commit, so exactly
once in effect): lock the batch's customers' rows, fold the events (pure domain code), upsert the rows
that changed. It emits nothing.

The fold is order-independent by the customer-stream version (``domain/customer_credit.py``): an event
older than the one that set the state it would replace — a dead letter re-driven after the customer's
later events — is consumed like any other (inbox, offsets) but changes nothing, and is logged.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from orders.adapters.ledger import load_customers, save_customers
from orders.domain.customer_credit import CustomerCredit, apply_customer_event, superseded_by
from shared.events.envelope import Envelope
from shared.logging import get_logger
from shared.messaging.outbox import OutboxMessage

log = get_logger(__name__)


class CreditTermsProjector:
    async def apply(self, conn: AsyncConnection, events: Sequence[Envelope]) -> Sequence[OutboxMessage]:
        if not events:
            return []
        ids = sorted({e.customer_id for e in events})
        before = await load_customers(conn, ids, lock=True)
        states = dict(before)
        for envelope in events:
            current = states.get(envelope.customer_id) or CustomerCredit(customer_id=envelope.customer_id)
            newer = superseded_by(current, envelope.data, envelope.aggregate_version)
            if newer is not None:
                log.info(
                    "credit_terms.stale_event_ignored",
                    customer_id=envelope.customer_id,
                    event_type=envelope.event_type,
                    event_id=str(envelope.event_id),
                    stream_version=envelope.aggregate_version,
                    applied_stream_version=newer,
                )
            states[envelope.customer_id] = apply_customer_event(current, envelope.data, envelope.aggregate_version)
        await save_customers(conn, [s for cid, s in states.items() if before.get(cid) != s and s.version > 0])
        return []
