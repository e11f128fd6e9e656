"""``assess_in_parts``, the loop the projector and the sweep share: customers assessed in order, part by
part, each part's rows sent while the next part is assessed; a failure lets the part in flight end and
surfaces, and nothing after it is sent.

The PostgreSQL side is a recording stand-in for the asyncpg connection (the real one is exercised by
tests/integration/segmentation/test_projector_chunks.py and the sweep tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import segmentation_builders as b

import segmentation.application.assessment as assessment
from segmentation.application.assessment import Assessor, Trigger, assess_in_parts
from segmentation.domain.facts import CustomerFacts
from segmentation.domain.grading import Calibration
from segmentation.domain.policy import Policy
from segmentation.projections.store import CustomerRecord
from shared.events.registry import parse_envelope

pytestmark = pytest.mark.unit

POLICY = Policy()
ASSESSOR = Assessor(POLICY, "crm.segmentation.v1")
NOW = b.T0 + timedelta(days=1)


class RecordingDriver:
    """Stands in for the asyncpg connection: records each statement's table and first column values."""

    def __init__(self, fail_on_statement: int | None = None) -> None:
        self.statements: list[tuple[str, list[Any]]] = []
        self.fail_on_statement = fail_on_statement
        self.running = 0
        self.overlapped = False

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.overlapped |= self.running > 0
        self.running += 1
        try:
            await asyncio.sleep(0)  # a round trip: the caller may go on assessing meanwhile
            self.statements.append((sql.split()[2], [r[0] for r in rows]))
            if self.fail_on_statement is not None and len(self.statements) == self.fail_on_statement:
                raise RuntimeError("disk full (simulated)")
        finally:
            self.running -= 1


def customers(n: int) -> list[CustomerRecord]:
    records = []
    for i in range(n):
        cid = f"c-{i}"
        facts = CustomerFacts.new(cid)
        facts.apply(b.placed(f"{cid}-o1", 100 * (i + 1), 0, cid))
        records.append(CustomerRecord(facts))
    return records


def segment_writes(driver: RecordingDriver) -> list[list[str]]:
    return [ids for table, ids in driver.statements if table == "customer_segments"]


async def in_parts_of_two(records: list[CustomerRecord], trigger_of: Callable[[CustomerRecord], Trigger]) -> Any:
    """``assess_in_parts`` over ``records`` in parts of two (its connection is the recording driver's)."""
    return await assess_in_parts(
        None,  # type: ignore[arg-type]
        ASSESSOR,
        records,
        Calibration.provisional(POLICY),
        NOW,
        trigger_of,
        part=2,
    )


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> RecordingDriver:
    fake = RecordingDriver()

    async def driver_of(_conn: object) -> RecordingDriver:
        return fake

    monkeypatch.setattr(assessment, "driver", driver_of)
    return fake


async def test_customers_are_written_part_by_part_in_assessment_order(driver: RecordingDriver) -> None:
    records = customers(5)
    triggers: list[str] = []

    def trigger_of(record: CustomerRecord) -> Trigger:
        triggers.append(record.customer_id)
        return Trigger(f"event of {record.customer_id}", f"corr-{record.customer_id}")

    messages = await in_parts_of_two(records, trigger_of)

    ids = [r.customer_id for r in records]
    assert triggers == ids
    assert segment_writes(driver) == [ids[0:2], ids[2:4], ids[4:5]]
    assert [ids for table, ids in driver.statements if table == "customer_orders"] == [
        ids[0:2],
        ids[2:4],
        ids[4:5],
    ]
    events = [parse_envelope(m.value) for m in messages]
    assert [e.customer_id for e in events if e.event_type == "CustomerTierChanged"] == ids
    assert {e.correlation_id for e in events if e.customer_id == "c-3"} == {"corr-c-3"}


async def test_a_part_that_fails_to_write_stops_the_loop_and_surfaces(driver: RecordingDriver) -> None:
    driver.fail_on_statement = 4  # the second part's segments (each part: segments, orders, history)
    records = customers(7)
    assessed: list[str] = []

    def trigger_of(record: CustomerRecord) -> Trigger:
        assessed.append(record.customer_id)
        return Trigger("test", "corr")

    with pytest.raises(RuntimeError, match="disk full"):
        await in_parts_of_two(records, trigger_of)

    # The failure surfaced when the third part was handed over: no fourth part was assessed or sent.
    assert segment_writes(driver) == [["c-0", "c-1"], ["c-2", "c-3"]]
    assert assessed == [f"c-{i}" for i in range(6)]
    assert not driver.overlapped  # one statement at a time on the connection


async def test_an_assessment_that_fails_lets_the_part_in_flight_end(driver: RecordingDriver) -> None:
    records = customers(4)

    def trigger_of(record: CustomerRecord) -> Trigger:
        if record.customer_id == "c-3":
            raise ValueError("broken trigger")
        return Trigger("test", "corr")

    with pytest.raises(ValueError, match="broken trigger"):
        await in_parts_of_two(records, trigger_of)

    assert segment_writes(driver) == [["c-0", "c-1"]]
    assert driver.running == 0  # the first part's writes ended before the error left the loop
