"""Applies batches of contract events to ``customer_segments`` and emits tier changes.

Runs inside the consumer's transaction: lock the batch's customers' rows, fold the events in memory
(pure domain code), upsert the changed rows in one statement, and stage a CustomerTierChanged for
every customer whose tier moved — all committed together with the inbox and the offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentation.domain.customer_view import CustomerView, apply
from segmentation.domain.tiers import AbsoluteTierPolicy
from segmentation.projections.read_model import load_views, save_views
from shared.events import segmentation as contract
from shared.events.envelope import Envelope, Money
from shared.messaging.outbox import OutboxMessage


class SegmentProjector:
    def __init__(self, *, topic: str, policy: AbsoluteTierPolicy | None = None) -> None:
        self.topic = topic
        self.policy = policy or AbsoluteTierPolicy()

    async def apply(self, conn: AsyncConnection, events: Sequence[Envelope]) -> Sequence[OutboxMessage]:
        if not events:
            return []
        ids = sorted({e.customer_id for e in events})
        before = await load_views(conn, ids, lock=True)
        views = dict(before)
        last_event: dict[str, Envelope] = {}
        for envelope in events:
            current = views.get(envelope.customer_id) or CustomerView(customer_id=envelope.customer_id)
            views[envelope.customer_id] = apply(current, envelope, self.policy)
            last_event[envelope.customer_id] = envelope
        outgoing: list[OutboxMessage] = []
        for customer_id, view in views.items():
            previous = before.get(customer_id)
            previous_tier = previous.value_tier if previous else None
            if view.value_tier != (previous_tier or "prospect"):
                view = replace(view, segmentation_version=view.segmentation_version + 1)
                views[customer_id] = view
                outgoing.append(self._tier_changed(view, previous_tier, last_event[customer_id]))
        await save_views(conn, [views[c] for c in ids])
        return outgoing

    def _tier_changed(self, view: CustomerView, previous_tier: str | None, cause: Envelope) -> OutboxMessage:
        payload = contract.CustomerTierChanged(
            previous_tier=previous_tier,
            new_tier=view.value_tier,
            reason=f"net contribution {view.net_revenue} after {cause.event_type}",
            net_contribution=Money(amount=view.net_revenue, currency=view.currency or "CNY"),
            cut_points=self.policy.cut_points(),
            policy_version=self.policy.version,
        )
        envelope = Envelope.wrap(
            payload,
            producer=contract.PRODUCER,
            aggregate_type="customer_segment",
            aggregate_id=view.customer_id,
            aggregate_version=view.segmentation_version,
            customer_id=view.customer_id,
            correlation_id=cause.correlation_id,
            causation_id=str(cause.event_id),
            occurred_at=cause.occurred_at,
        )
        return OutboxMessage.from_envelope(envelope, self.topic)
