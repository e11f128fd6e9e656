"""A poll touching more customers than one chunk of writes: every chunk lands, in assessment order, and a
chunk that fails rolls the whole poll back (the writes stream while the next chunk is assessed)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from engine_harness import T0, Segmentation, placed, registered

import segmentation.application.projector as projector_module
import segmentation.projections.store as store
from shared.events.envelope import Envelope

pytestmark = pytest.mark.integration


def customer_with_an_order(cid: str, amount: int) -> list[Envelope]:
    return [registered(cid), placed(cid, f"{cid}-o1", amount, T0 - timedelta(days=1))]


async def test_every_chunk_of_a_poll_is_written_and_history_follows_the_assessment_order(
    segmentation: Segmentation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(projector_module, "_ASSESS_CHUNK", 2)
    ids = [f"c-{i}" for i in range(7)]  # four chunks: 2 + 2 + 2 + 1
    await segmentation.feed(*(e for n, cid in enumerate(ids) for e in customer_with_an_order(cid, 100 * (n + 1))))

    rows = await segmentation.rows("SELECT customer_id, orders_count, gross_revenue FROM customer_segments")
    assert sorted((r["customer_id"], r["orders_count"], r["gross_revenue"]) for r in rows) == [
        (cid, 1, Decimal(100 * (n + 1))) for n, cid in enumerate(ids)
    ]
    assert len(await segmentation.rows("SELECT 1 FROM customer_orders")) == len(ids)
    history = await segmentation.rows("SELECT customer_id FROM segment_history WHERE kind = 'tier' ORDER BY id")
    assert [h["customer_id"] for h in history] == ids


async def test_a_chunk_that_fails_to_write_rolls_the_whole_poll_back(
    segmentation: Segmentation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(projector_module, "_ASSESS_CHUNK", 2)
    real_write = store._write
    chunks: list[int] = []

    async def third_chunk_fails(db, changes):  # type: ignore[no-untyped-def]
        chunks.append(len(changes.segments))
        if len(chunks) == 3:
            raise RuntimeError("disk full (simulated)")
        await real_write(db, changes)

    monkeypatch.setattr(store, "_write", third_chunk_fails)
    events = [e for n, cid in enumerate(f"c-{i}" for i in range(7)) for e in customer_with_an_order(cid, 100 + n)]
    with pytest.raises(RuntimeError, match="disk full"):
        await segmentation.feed(*events)

    assert chunks == [2, 2, 2]  # the failure surfaced before a fourth chunk was sent
    assert await segmentation.rows("SELECT customer_id FROM customer_segments") == []
    assert await segmentation.rows("SELECT customer_id FROM customer_orders") == []
