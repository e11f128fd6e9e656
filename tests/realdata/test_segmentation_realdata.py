"""The Online Retail history through the segmentation engine, checked customer by customer.

The CSV is planned into commands exactly as ``tierstream load`` does (src/tierstream/dataset.py), turned
into contract envelopes (CustomerRegistered, OrderPlaced, OrderReturned) and applied to the projector
in 500-event batches, each in a real PostgreSQL transaction; then the engine recalibrates as of
2011-12-10T00:00Z. Every customer's R, F, M, RFM scores, segment and value tier are compared with an
independent computation written here in plain Python from the written rules (DESIGN §4,
docs/segmentation.md) — counting ranks instead of reading cut points, and with the R×F grid typed in
from DESIGN — without calling any of the engine's code.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from segmentation.application.assessment import Assessor
from segmentation.application.projector import SegmentProjector
from segmentation.application.recalibration import recalibrate
from segmentation.bootstrap import FixedClock
from segmentation.domain.policy import Policy
from shared.db.engine import create_engine
from shared.events.envelope import Envelope
from tierstream.dataset import LoadPlan, contract_events, plan, read_rows

pytestmark = pytest.mark.realdata

#: tests/conftest.py's DATA_FILE: ../shared/data/online_retail.csv.gz next to the repository.
DATA_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "online_retail.csv.gz"
AS_OF = datetime(2011, 12, 10, tzinfo=UTC)
WINDOW = timedelta(days=365)
BATCH = 500

#: DESIGN §4's default R×F grid, typed in independently of the policy module.
GRID = {
    "champions": ({5}, {4, 5}),
    "loyal": ({3, 4}, {4, 5}),
    "potential_loyalists": ({4, 5}, {2, 3}),
    "new": ({5}, {1}),
    "promising": ({4}, {1}),
    "need_attention": ({3}, {3}),
    "about_to_sleep": ({3}, {1, 2}),
    "at_risk": ({1, 2}, {3, 4}),
    "cant_lose": ({1, 2}, {5}),
    "hibernating": ({1, 2}, {1, 2}),
}


@pytest.fixture(scope="module")
def load_plan() -> LoadPlan:
    if not Path(DATA_FILE).exists():
        pytest.skip(f"real data not available: {DATA_FILE} is absent (see ../shared/data/README.md)")
    return plan(read_rows(Path(DATA_FILE)))


def envelopes(p: LoadPlan) -> list[Envelope]:
    """The plan as contract events (the replay input; the expected figures below are computed apart)."""
    return [envelope for _, envelope in contract_events(p, producer="realdata-test")]


# -- the independent computation ---------------------------------------------------------------------


def expected(p: LoadPlan) -> dict[str, dict[str, Any]]:
    """R, F, M, scores, segment and tier of every planned customer, from the plan and the written rules."""
    returned: dict[str, Decimal] = defaultdict(Decimal)
    for r in p.returns:
        returned[r.order_id] += r.amount
    by_customer: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for o in p.orders:
        by_customer[o.customer_id].append((o.placed_at.astimezone(UTC), o.total - returned[o.order_id]))
    measures: dict[str, tuple[int, int, Decimal]] = {}
    for cid, placed in by_customer.items():
        in_window = [net for at, net in placed if AS_OF - WINDOW < at <= AS_OF]
        last_day: date = max(at for at, _ in placed).date()
        measures[cid] = ((AS_OF.date() - last_day).days, len(in_window), sum(in_window, Decimal(0)))
    n = len(measures)
    recency = sorted(r for r, _, _ in measures.values())
    pairs = sorted((f, m) for _, f, m in measures.values())
    nets = sorted(m for _, _, m in measures.values())

    def score(better_than_me: int) -> int:
        """1 + the quintile thresholds k = ⌈j N / 5⌉ (j = 1…4) I am within: fewer than k strictly better."""
        return 1 + sum(1 for j in (1, 2, 3, 4) if better_than_me < math.ceil(j * n / 5))

    def tier(net: Decimal) -> str:
        above = n - bisect_right(nets, net)  # customers with a strictly larger net
        if above < math.ceil(5 * n / 100):
            return "vip"
        if above < math.ceil(25 * n / 100):
            return "key"
        at_or_below = bisect_right(nets, net)
        return "small" if at_or_below <= math.ceil(5 * n / 100) else "normal"

    result: dict[str, dict[str, Any]] = {}
    for c in p.customers:
        if c.customer_id not in measures:
            result[c.customer_id] = {"tier": "prospect", "R": None, "F": None, "M": None, "scores": None, "seg": None}
            continue
        r, f, m = measures[c.customer_id]
        scores = (
            score(bisect_left(recency, r)),
            score(len(pairs) - bisect_right(pairs, (f, m))),
            score(n - bisect_right(nets, m)),
        )
        [segment] = [name for name, (rs, fs) in GRID.items() if scores[0] in rs and scores[1] in fs]
        result[c.customer_id] = {"tier": tier(m), "R": r, "F": f, "M": m, "scores": scores, "seg": segment}
    return result


# -- the test ------------------------------------------------------------------------------------------


async def test_every_customer_of_the_online_retail_history_is_graded_as_the_rules_say(
    load_plan: LoadPlan, database_factory
) -> None:  # type: ignore[no-untyped-def]
    p = load_plan
    engine = create_engine(await database_factory("segmentation"))
    policy = Policy()
    try:
        events = envelopes(p)
        projector = SegmentProjector(topic="crm.segmentation.v1", policy=policy, clock=FixedClock(AS_OF))
        started = time.perf_counter()
        for start in range(0, len(events), BATCH):
            async with engine.begin() as conn:
                await projector.apply(conn, events[start : start + BATCH])
        replayed_s = time.perf_counter() - started
        started = time.perf_counter()
        result = await recalibrate(
            engine, Assessor(policy, "crm.segmentation.v1"), as_of=AS_OF, trigger="realdata-test"
        )
        recalibrated_s = time.perf_counter() - started
        assert result is not None
        async with engine.connect() as conn:
            rows = {
                r["customer_id"]: r
                for r in (
                    await conn.execute(
                        text(
                            "SELECT customer_id, value_tier, recency_days, window_orders, net_contribution, "
                            "r_score, f_score, m_score, rfm_segment, orders_count, returned_amount FROM customer_segments"
                        )
                    )
                ).mappings()
            }
    finally:
        await engine.dispose()

    want = expected(p)
    assert set(rows) == set(want), "every planned customer has exactly one row"
    mismatches = []
    for cid, w in want.items():
        row = rows[cid]
        got = {
            "tier": row["value_tier"],
            "R": row["recency_days"] if w["R"] is not None else None,
            "F": row["window_orders"] if w["F"] is not None else None,
            "M": row["net_contribution"] if w["M"] is not None else None,
            "scores": None if row["r_score"] is None else (row["r_score"], row["f_score"], row["m_score"]),
            "seg": row["rfm_segment"],
        }
        if got != w:
            mismatches.append((cid, got, w))
    assert not mismatches, f"{len(mismatches)} customers differ, e.g. {mismatches[:3]}"

    tiers = Counter(w["tier"] for w in want.values())
    segments = Counter(w["seg"] for w in want.values())
    used_lines = sum(len(o.lines) for o in p.orders)
    skipped = dict(p.rejected)
    print(
        f"\nOnline Retail: {p.rows_read} rows, {used_lines} invoice lines → {len(p.orders)} orders, "
        f"{len(p.returns)} returns, {len(p.customers)} customers; skipped: {skipped}\n"
        f"calibration #{result.calibration_id}: population {result.population}, cut points {result.cut_points}\n"
        f"tiers {dict(tiers)}\nsegments {dict(segments)}\n"
        f"projected {len(events)} events in {replayed_s:.1f} s, recalibrated in {recalibrated_s:.1f} s"
    )
    assert result.population == sum(1 for w in want.values() if w["R"] is not None)
