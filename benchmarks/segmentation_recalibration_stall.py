"""How long a recalibration stalls the consumers, on the Online Retail history.

    export DATABASE_URL=postgresql://tierstream:tierstream@127.0.0.1:35432/postgres
    uv run python benchmarks/segmentation_recalibration_stall.py [--max-customers N]

1. Plans ``../shared/data/online_retail.csv.gz`` as ``tierstream load`` does and projects its contract
   events into a fresh, migrated segmentation database with the consumer's projector (polls of 500,
   clock 2011-12-10T00:00Z), as tests/realdata does.
2. Recalibrates as of that instant (``segmentation.application.recalibration.recalibrate``, the code of
   ``POST /calibrations`` and the schedule) while a probe in another process (as a consumer is) does
   what every consumer poll does first — a transaction taking the engine lock *shared* — back to back,
   and records how long each waited.

Prints the recalibration's duration and the probe's longest / median wait: the longest wait is the time
a consumer poll is held up, i.e. how long the recalibration holds the engine lock exclusively. Drops the
database at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import statistics
import time
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import asyncpg

from rebuild_common import DEFAULT_PG, database_url, drop_database
from segmentation.__main__ import DEFINITION
from segmentation.application.assessment import Assessor
from segmentation.application.projector import SegmentProjector
from segmentation.application.recalibration import recalibrate
from segmentation.bootstrap import FixedClock
from segmentation.domain.policy import Policy
from segmentation.projections.store import ENGINE_LOCK
from shared.db.engine import create_engine, ensure_database, to_libpq_url
from shared.db.migrations import upgrade
from tierstream.dataset import contract_events, plan, read_rows

DATA_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_retail.csv.gz"
AS_OF = datetime(2011, 12, 10, tzinfo=UTC)
TOPIC = "crm.segmentation.v1"


def probe(url: str, ready: Event, done: Event, waits: Queue[list[float]]) -> None:
    """In a process of its own, like a consumer: take the engine lock shared in a transaction, again and
    again, timing each (``ready`` once the first has); puts the list of waits on ``waits`` when ``done``
    is set."""

    async def loop() -> list[float]:
        conn = await asyncpg.connect(to_libpq_url(url))
        out: list[float] = []
        try:
            while not done.is_set():
                started = time.perf_counter()
                async with conn.transaction():
                    await conn.execute(f"SELECT pg_advisory_xact_lock_shared({ENGINE_LOCK})")
                out.append(time.perf_counter() - started)
                ready.set()
                await asyncio.sleep(0.005)
        finally:
            await conn.close()
        return out

    waits.put(asyncio.run(loop()))


async def main(args: argparse.Namespace) -> None:
    if not DATA_FILE.exists():
        print(f"SKIPPED: the Online Retail data set is absent ({DATA_FILE}; see ../shared/data/README.md)")
        return
    p = plan(read_rows(DATA_FILE), max_customers=args.max_customers)
    events = [envelope for _, envelope in contract_events(p, producer="bench")]
    url = database_url(args.pg_url, "benchrc")
    await ensure_database(url)
    engine = create_engine(url)
    try:
        await upgrade(DEFINITION.migrations, url)
        policy = Policy()
        projector = SegmentProjector(topic=TOPIC, policy=policy, clock=FixedClock(AS_OF))
        started = time.perf_counter()
        for start in range(0, len(events), 500):
            async with engine.begin() as conn:
                await projector.apply(conn, events[start : start + 500])
        print(
            f"projected {len(events)} events of {len(p.customers)} customers in {time.perf_counter() - started:.1f} s"
        )
        # What stays is what a sweep or API process holds: not the data set, not a consumer's facts cache
        # (a larger heap makes every full garbage collection during the recalibration slower).
        del events, projector, p
        gc.collect()
        for run in range(args.runs):
            context = multiprocessing.get_context("spawn")
            ready, done, queue = context.Event(), context.Event(), context.Queue()
            prober = context.Process(target=probe, args=(url, ready, done, queue))
            prober.start()
            assert await asyncio.to_thread(ready.wait, 60), "the probe process did not start"
            await asyncio.sleep(0.1)
            started = time.perf_counter()
            result = await recalibrate(engine, Assessor(policy, TOPIC), as_of=AS_OF, trigger=f"bench-{run}")
            took = time.perf_counter() - started
            await asyncio.sleep(0.2)
            done.set()
            waits: list[float] = await asyncio.to_thread(queue.get)
            prober.join()
            assert result is not None
            print(
                f"run {run + 1}: recalibration of {result.customers_graded} customers took {took:.2f} s; "
                f"a shared-lock transaction in another process waited at most {max(waits):.2f} s "
                f"(median {statistics.median(waits) * 1000:.1f} ms over {len(waits)} probes)"
            )
    finally:
        await engine.dispose()
        await drop_database(args.pg_url, url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default=os.environ.get("DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--max-customers", type=int, default=None)
    parser.add_argument("--runs", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
