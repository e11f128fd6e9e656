"""The time-driven rules: a scheduled sweep re-assesses every customer as of the injected clock.

Time alone changes grades — days since the last order grow (activity, R score, cadence breach), orders
leave the trailing window (tier, M), complaint deadlines pass, receivables age into older buckets — so the
sweep re-runs the same assessment as a live event for every customer, chunk by chunk (one transaction
per chunk, rows locked, the engine lock shared so only a recalibration excludes it). Changes become
history and events exactly as for live events; snoozed alerts whose time ran out reopen.

:func:`run_schedule` is the ``sweep`` role: every ``interval`` it first recalibrates if the schedule says
so (:func:`~segmentation.application.recalibration.recalibration_due`), then sweeps. Running several
instances is safe: the recalibration re-checks "due" under the exclusive lock, and a second sweep over
the same instant changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import operator
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from segmentation.application.assessment import Assessor, Trigger, assess_in_parts
from segmentation.application.metrics import count_raised_alerts
from segmentation.application.recalibration import recalibrate
from segmentation.projections.calibrations import latest_calibration
from segmentation.projections.store import LOCK_SHARED, CustomerRecord, all_customer_ids, load_records
from shared.logging import get_logger
from shared.messaging.consumer import is_transient
from shared.messaging.outbox import OutboxMessage, write_outbox

log = get_logger(__name__)

#: Customers assessed per part of a chunk's writes (see ``assess_in_parts``).
_WRITE_PART = 250


@dataclass(frozen=True)
class SweepResult:
    as_of: datetime
    customers: int
    events: dict[str, int]  # event type → how many the sweep staged


async def sweep(db: AsyncEngine, assessor: Assessor, *, now: datetime, chunk: int = 1000) -> SweepResult:
    async with db.connect() as conn:
        ids = await all_customer_ids(conn)
    emitted = await reassess(db, assessor, [(now, customer_id) for customer_id in ids], chunk=chunk)
    log.info("segmentation.swept", as_of=now.isoformat(), customers=len(ids), events=dict(emitted))
    return SweepResult(as_of=now, customers=len(ids), events=dict(emitted))


async def reassess(
    db: AsyncEngine, assessor: Assessor, graded: Sequence[tuple[datetime, str]], *, chunk: int = 1000
) -> Counter[str]:
    """Assess each customer of ``graded`` as of its instant — (instant, customer id) pairs, those of one
    instant next to each other —, ``chunk`` customers per transaction; what it staged, by event type."""
    emitted: Counter[str] = Counter()
    for start in range(0, len(graded), chunk):
        part = graded[start : start + chunk]
        messages: list[OutboxMessage] = []
        async with db.begin() as conn:
            await conn.execute(LOCK_SHARED)
            calibration = await latest_calibration(conn, assessor.policy)
            records = await load_records(conn, [customer_id for _, customer_id in part], lock=True)
            for now, same_instant in itertools.groupby(part, key=operator.itemgetter(0)):
                trigger = Trigger("sweep", f"sweep-{now.isoformat()}")
                messages += await assess_in_parts(
                    conn,
                    assessor,
                    [records[customer_id] for _, customer_id in same_instant],
                    calibration,
                    now,
                    _always(trigger),
                    part=_WRITE_PART,
                )
            await write_outbox(conn, messages)
        count_raised_alerts(messages, path="sweep")  # committed: the chunk's transaction has ended
        emitted.update(dict(m.headers)["event_type"] for m in messages)
    return emitted


def _always(trigger: Trigger) -> Callable[[CustomerRecord], Trigger]:
    return lambda _record: trigger


async def run_schedule(
    db: AsyncEngine, assessor: Assessor, clock: Callable[[], datetime], stop: asyncio.Event, *, interval_s: float
) -> None:
    """Recalibrate when due, then sweep; every ``interval_s`` until ``stop``. Failures wait for the next run."""
    while not stop.is_set():
        now = clock()
        try:
            await recalibrate(db, assessor, as_of=now, trigger="scheduled", only_if_due=True)
            await sweep(db, assessor, now=now)
        except Exception as exc:
            if is_transient(exc):
                log.warning("segmentation.sweep_unavailable", error=repr(exc))
            else:
                log.exception("segmentation.sweep_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
