"""The overdue sweep: reports receivables as they cross the 1–30 / 31–60 / 61–90 / 90+ day buckets.

Time-driven (DESIGN §2): it asks an injectable clock for "today", finds unpaid orders whose current
bucket is later than the last one reported (the receivables view keeps that rank, maintained in the
same transaction as the order's events), and lets each Order decide (``report_overdue``): the aggregate
records PaymentOverdue at most once per bucket and never for a bucket earlier than one it reported, so
a replay, a repeated sweep or two sweeps racing each other (the loser gets a version conflict) never
report a bucket twice. A receivable first seen already 75 days overdue is reported once, in 61–90; the
buckets it skipped are not back-filled (days_overdue must match its bucket).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Counter

from orders.application.ports import CreditLedger
from orders.domain.order import Order
from shared.events.envelope import utc_now
from shared.events.vocabulary import OverdueBucket
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import ConcurrencyConflict
from shared.logging import get_logger
from shared.messaging.consumer import is_transient

log = get_logger(__name__)

OVERDUE_REPORTED = Counter(
    "tierstream_orders_overdue_reported_total", "PaymentOverdue recorded by the sweep", ["bucket"]
)
for _bucket in OverdueBucket:  # every series exists from start-up, at 0
    OVERDUE_REPORTED.labels(str(_bucket))


@dataclass
class SweepReport:
    reported: int = 0
    conflicts: int = 0
    examined: int = 0


class OverdueSweep:
    def __init__(
        self,
        orders: AggregateRepository[Order],
        ledger: CreditLedger,
        *,
        clock: Callable[[], datetime] = utc_now,
        batch_size: int = 500,
    ) -> None:
        self.orders = orders
        self.ledger = ledger
        self.clock = clock
        self.batch_size = batch_size

    async def run_once(self) -> SweepReport:
        """One pass over every receivable due for a new bucket as of the clock's today."""
        today = self.clock().date()
        correlation_id = f"overdue-sweep-{today.isoformat()}-{uuid.uuid4().hex[:8]}"
        report = SweepReport()
        after = None
        while True:
            batch = await self.ledger.overdue_candidates(today, limit=self.batch_size, after=after)
            for _due, order_id in batch:
                report.examined += 1
                order = await self.orders.get(order_id)
                if order is None or not order.report_overdue(today):
                    continue
                try:
                    await self.orders.save(order, correlation_id=correlation_id, hook=self.ledger.recording(order))
                    report.reported += 1
                    OVERDUE_REPORTED.labels(str(order.overdue_bucket)).inc()
                except ConcurrencyConflict:  # a payment or another sweep got there first: next pass decides
                    report.conflicts += 1
            if len(batch) < self.batch_size:
                return report
            after = batch[-1]


async def run_periodically(sweep: OverdueSweep, interval_s: float, stop: asyncio.Event) -> None:
    """Sweep every ``interval_s`` seconds until ``stop``; failures are logged and retried next time."""
    log.info("overdue_sweep.started", interval_s=interval_s)
    while not stop.is_set():
        try:
            report = await sweep.run_once()
            if report.examined:
                log.info("overdue_sweep.done", reported=report.reported, conflicts=report.conflicts)
        except Exception as exc:
            if is_transient(exc):
                log.warning("overdue_sweep.unavailable", error=repr(exc))
            else:
                log.exception("overdue_sweep.failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
    log.info("overdue_sweep.stopped")
