"""The SLA sweep: escalate every complaint whose watched deadline has passed, exactly once per breach.

One run takes "now" from the injected clock, then walks the read model's candidates
(``next_escalation_at < now``) page by page with a keyset cursor, so each candidate is visited once
per run however many there are. For each it loads the aggregate, lets it decide
(:meth:`Complaint.escalate_overdue`) and saves. The escalation lands in the complaint's own stream,
so a second run — or a replay — knows it happened.

Concurrency: two sweeps (or a sweep and a user command) may load the same complaint at once; the
append of the slower one hits the stream's version and raises :class:`ConcurrencyConflict`. The sweep
then reloads and decides again — the winner's escalation is in the stream now, so nothing is
escalated twice — and gives up on that complaint for this run after ``max_attempts`` conflicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from feedback.application.ports import Complaints
from shared.events.envelope import utc_now
from shared.eventsourcing.store import ConcurrencyConflict
from shared.logging import get_logger
from shared.messaging.consumer import is_transient

log = get_logger(__name__)


@dataclass
class SweepReport:
    """What one run did."""

    now: datetime
    #: candidates read from the read model (next watched deadline < now)
    examined: int = 0
    escalated_complaints: int = 0
    escalations: int = 0
    #: complaints given up on for this run after ``max_attempts`` version conflicts in a row
    skipped: int = 0
    #: version conflicts met (another sweeper or a command was faster); each one led to a reload
    conflicts: int = 0


class EscalationSweep:
    def __init__(
        self,
        complaints: Complaints,
        *,
        clock: Callable[[], datetime] = utc_now,
        batch_size: int = 200,
        max_attempts: int = 3,
    ) -> None:
        self.complaints = complaints
        self.clock = clock
        self.batch_size = batch_size
        self.max_attempts = max_attempts

    async def run_once(self) -> SweepReport:
        report = SweepReport(now=self.clock())
        correlation_id = f"sla-sweep-{uuid.uuid4()}"
        cursor: tuple[datetime, str] | None = None
        while True:
            page = await self.complaints.due_for_escalation(report.now, limit=self.batch_size, after=cursor)
            for due in page:
                await self._escalate(due.complaint_id, correlation_id, report)
            if len(page) < self.batch_size:
                break
            cursor = page[-1].cursor
        if report.examined:
            log.info("sla_sweep.done", **{k: v for k, v in vars(report).items() if k != "now"})
        return report

    async def _escalate(self, complaint_id: str, correlation_id: str, report: SweepReport) -> None:
        report.examined += 1
        for _attempt in range(self.max_attempts):
            complaint = await self.complaints.get(complaint_id)
            if complaint is None:
                return
            recorded = complaint.escalate_overdue(report.now)
            try:
                # Saved even with nothing recorded: that rewrites a stale read-model row.
                await self.complaints.save(complaint, correlation_id=correlation_id)
            except ConcurrencyConflict:
                report.conflicts += 1
                continue  # the stream moved under us: reload, the newer state decides
            if recorded:
                report.escalated_complaints += 1
                report.escalations += recorded
            return
        report.skipped += 1
        log.warning("sla_sweep.gave_up", complaint_id=complaint_id, attempts=self.max_attempts)


async def run_periodically(sweep: EscalationSweep, stop: asyncio.Event, *, interval_s: float) -> None:
    """Run ``sweep`` every ``interval_s`` seconds until ``stop`` is set. A failed run (e.g. the database
    is down) is logged and retried at the next tick: time-driven rules catch up on their own."""
    while not stop.is_set():
        try:
            await sweep.run_once()
        except Exception as exc:
            log.warning("sla_sweep.failed", error=repr(exc), exc_info=not is_transient(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
