"""Applies batches of contract events to the segmentation projection and stages what changed.

Runs inside the consumer's transaction (one per poll, with the inbox and the offsets): take the engine
lock shared, lock the batch's customers' rows (creating placeholder rows for customers not seen yet, so
consumers of different partitions that meet the same new customer serialise on its row), fold the events
into their facts in memory, assess every touched customer once as of the clock against the frozen
calibration, and write what changed chunk by chunk (one statement per table and chunk), each chunk sent
while the next one is assessed, so PostgreSQL and Python work at the same time. Facts of recently seen
customers stay in memory between polls (``FactsCache``, validated by a token on the customer's row), so a
poll loads only the fact rows of customers it has not just seen. Tier, RFM-segment, activity and
churn-alert changes go to segmentation's outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentation.application.assessment import Assessor, Trigger, assess_in_parts
from segmentation.application.metrics import count_raised_alerts
from segmentation.domain.policy import Policy
from segmentation.projections.calibrations import latest_calibration
from segmentation.projections.facts_cache import FactsCache
from segmentation.projections.store import LOCK_SHARED, load_records
from shared.events.envelope import Envelope, utc_now
from shared.logging import get_logger
from shared.messaging.outbox import OutboxMessage

log = get_logger(__name__)

Clock = Callable[[], datetime]

#: Customers assessed per part of the writes (see ``assess_in_parts``).
_ASSESS_CHUNK = 800


class SegmentProjector:
    def __init__(
        self, *, topic: str, policy: Policy | None = None, clock: Clock = utc_now, cache_size: int = 20_000
    ) -> None:
        self.policy = policy or Policy()
        self.assessor = Assessor(self.policy, topic)
        self.clock = clock
        self.cache = FactsCache(cache_size)

    def committed(self, outgoing: Sequence[OutboxMessage]) -> None:
        """Called by the consumer once a batch ``apply`` staged ``outgoing`` for has committed."""
        count_raised_alerts(outgoing, path="consumer")

    async def apply(self, conn: AsyncConnection, events: Sequence[Envelope]) -> Sequence[OutboxMessage]:
        if not events:
            return []
        await conn.execute(LOCK_SHARED)
        ids = sorted({e.customer_id for e in events})
        records = await load_records(conn, ids, lock=True, create=True, cache=self.cache)
        last: dict[str, Envelope] = {}
        for envelope in events:
            kept_by = records[envelope.customer_id].facts.apply(envelope)
            if kept_by is not None:
                log.info(
                    "facts.stale_event_superseded",
                    customer_id=envelope.customer_id,
                    event_type=envelope.event_type,
                    event_id=str(envelope.event_id),
                    aggregate_id=envelope.aggregate_id,
                    stream_version=envelope.aggregate_version,
                    applied_stream_version=kept_by,
                )
            last[envelope.customer_id] = envelope
        for record in records.values():
            record.facts_token = uuid.uuid4()
        calibration = await latest_calibration(conn, self.policy)
        messages = await assess_in_parts(
            conn,
            self.assessor,
            [records[customer_id] for customer_id in ids],
            calibration,
            self.clock(),
            lambda record: Trigger.event(last[record.customer_id]),
            part=_ASSESS_CHUNK,
        )
        for record in records.values():
            assert record.facts_token is not None
            self.cache.put(record.customer_id, record.facts_token, record.facts)
        return messages
