"""Peak RSS of one ``python -m segmentation consume`` process projecting 100,000 customers.

    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:39092 DATABASE_URL=postgresql://tierstream:tierstream@127.0.0.1:35432/postgres
    uv run python benchmarks/segmentation_memory.py --customers 100000 --events 400000 [--cache-size 20000]
        [--batch-size 5000]

1. Generates a synthetic history for ``--customers`` customers (synthetic_history.py's seeded generator:
   every customer registered, orders with lines, payments, returns, cancellations, complaints, surveys;
   ``--events`` in total) and batch-produces it to a fresh namespace ``benchmem<random>.``.
2. Migrates a fresh database and starts ONE ``python -m segmentation consume`` subprocess on it (the
   production role; ``--cache-size`` sets SEGMENTATION_FACTS_CACHE_SIZE, default the service default
   20,000 customers kept in memory between polls; ``--batch-size`` sets SEGMENTATION_CONSUMER_BATCH_SIZE,
   default the service default). Other settings reach the process from this one's environment.
3. Waits until the consumer's stored offsets reach the end of the topics and every customer has a row,
   sampling VmRSS every 0.5 s; then reads VmHWM (peak RSS) from /proc/<pid>/status, and stops the
   process (SIGTERM, by PID).

Prints the peak RSS of a process that only imports the service (the fixed cost), the RSS at the first
committed poll (imports done, connected), the peak, the RSS when caught up, events/s; drops the database
and deletes the topics at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from rebuild_common import (
    DEFAULT_KAFKA,
    DEFAULT_PG,
    database_url,
    delete_topics,
    drop_database,
    new_namespace,
    produce,
)
from segmentation.__main__ import DEFINITION
from segmentation.config import SegmentationSettings
from shared.db.engine import create_engine, ensure_database
from shared.db.migrations import upgrade
from synthetic_history import encode, timeline

REPO = Path(__file__).resolve().parents[1]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def imports_rss_kb(env: dict[str, str]) -> int:
    """Peak RSS of a process that only imports what ``python -m segmentation`` imports (the fixed cost)."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, i.e. it would include this process's size.
    code = (
        "import pathlib, segmentation.__main__; "
        "print(next(l.split()[1] for l in pathlib.Path('/proc/self/status').read_text().splitlines() "
        "if l.startswith('VmHWM:')))"
    )
    return int(subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, check=True).stdout)


def start_consumer(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "segmentation", "consume"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


async def main(args: argparse.Namespace) -> None:
    compact = timeline(args.events, args.customers, args.seed)
    total = len(compact)
    names = new_namespace("benchmem")
    url = database_url(args.pg_url, "bench_mem")
    process: subprocess.Popen[bytes] | None = None
    try:
        started = time.perf_counter()
        await produce(args.bootstrap, names, (encode(args.seed, e) for e in compact), args.partitions)
        print(f"produced {total} events for {args.customers} customers in {time.perf_counter() - started:.1f} s")
        del compact
        await ensure_database(url)
        await upgrade(DEFINITION.migrations, url)
        env = {
            **os.environ,
            "SEGMENTATION_DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": args.bootstrap,
            "TIERSTREAM_TOPIC_NAMESPACE": names.namespace,
            "TIERSTREAM_TOPIC_PARTITIONS": str(args.partitions),
            "TIERSTREAM_ENV": "development",
            "LOG_LEVEL": "WARNING",
        }
        if args.cache_size is not None:
            env["SEGMENTATION_FACTS_CACHE_SIZE"] = str(args.cache_size)
        if args.batch_size is not None:
            env["SEGMENTATION_CONSUMER_BATCH_SIZE"] = str(args.batch_size)
        imports = imports_rss_kb(env)
        process = start_consumer(env)
        engine = create_engine(url)
        baseline = peak_sampled = 0
        try:
            started = time.perf_counter()
            deadline = started + args.timeout
            while True:
                if process.poll() is not None:
                    err = process.stderr.read().decode()[-2000:] if process.stderr else ""
                    raise SystemExit(f"the consumer exited ({process.returncode}): {err}")
                rss = status_kb(process.pid, "VmRSS")
                peak_sampled = max(peak_sampled, rss)
                async with engine.connect() as conn:
                    done = await conn.scalar(text("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets"))
                if done and not baseline:
                    baseline = rss  # imports done, connected, first poll committed
                if done >= total:
                    elapsed = time.perf_counter() - started
                    async with engine.connect() as conn:
                        rows = await conn.scalar(text("SELECT count(*) FROM customer_segments"))
                    break
                if time.perf_counter() > deadline:
                    raise SystemExit(f"not caught up within {args.timeout:.0f} s ({done}/{total} events)")
                await asyncio.sleep(0.5)
            hwm = status_kb(process.pid, "VmHWM")
            final = status_kb(process.pid, "VmRSS")
        finally:
            await engine.dispose()
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        await drop_database(args.pg_url, url)
        await delete_topics(args.bootstrap, names)
    result = {
        "customers": args.customers,
        "customer_rows": rows,
        "events": total,
        "facts_cache_size": _setting(args.cache_size, "facts_cache_size"),
        "batch_size": _setting(args.batch_size, "consumer_batch_size"),
        "rss_imports_only_mib": round(imports / 1024, 1),
        "rss_first_commit_mib": round(baseline / 1024, 1),
        "peak_rss_vmhwm_mib": round(hwm / 1024, 1),
        "rss_caught_up_mib": round(final / 1024, 1),
        "peak_rss_sampled_0_5s_mib": round(peak_sampled / 1024, 1),
        "catch_up_seconds": round(elapsed, 1),
        "events_per_s": round(total / elapsed),
    }
    for key, value in result.items():
        print(f"{key:>26}: {value}")
    print(json.dumps(result))


def _setting(given: int | None, name: str) -> str | int:
    return given if given is not None else f"default ({SegmentationSettings.model_fields[name].default})"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=400_000, help="total events (≥ customers: one registration each)")
    parser.add_argument(
        "--cache-size", type=int, default=None, help="SEGMENTATION_FACTS_CACHE_SIZE (default: service's)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="SEGMENTATION_CONSUMER_BATCH_SIZE (default: service's)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds of consuming")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA))
    parser.add_argument("--pg-url", default=os.environ.get("DATABASE_URL", DEFAULT_PG), help="PostgreSQL server URL")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
