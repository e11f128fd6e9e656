"""``GET /calibrations`` shows where each calibration's numbers were measured (``measured_offsets``) beside
where everyone was re-graded (``consumer_offsets``); calibrations recorded before migration 0005 show
null. The OpenAPI document says so."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from engine_harness import T0, Segmentation, placed, registered
from sqlalchemy import text

pytestmark = pytest.mark.integration


def offset(next_offset: int, partition: int = 0) -> dict[str, object]:
    return {
        "consumer_group": "g.projector",
        "topic": "crm.orders.v1",
        "partition": partition,
        "next_offset": next_offset,
    }


async def write(seg: Segmentation, sql: str, **params: object) -> None:
    async with seg.container.engine.begin() as conn:
        await conn.execute(text(sql), params)


async def three_customers(seg: Segmentation) -> None:
    at = T0 - timedelta(days=5)
    await seg.feed(
        *(e for i in range(1, 4) for e in (registered(f"c-{i}"), placed(f"c-{i}", f"c-{i}-o1", 100 * i, at)))
    )


async def test_a_calibration_shows_the_offsets_it_was_measured_at_and_older_ones_show_null(
    segmentation: Segmentation,
) -> None:
    seg = segmentation
    await three_customers(seg)
    await write(
        seg,
        "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset) "
        "VALUES ('g.projector', 'crm.orders.v1', 0, 42)",
    )

    created = await seg.http.post("/calibrations", json={})
    assert created.status_code == 201, created.text
    assert created.json()["measured_offsets"] == [offset(42)]
    assert created.json()["consumer_offsets"] == [offset(42)]

    seg.clock.advance(timedelta(days=8))
    second = (await seg.http.post("/calibrations", json={})).json()
    # As recorded before migration 0005 (no measured_offsets) and, for the second, measured at an earlier
    # point than it re-graded at (polls committed during the measuring step).
    await write(seg, "UPDATE calibrations SET measured_offsets = NULL WHERE id = :id", id=created.json()["id"])
    await write(
        seg,
        "UPDATE calibrations SET measured_offsets = CAST(:m AS jsonb) WHERE id = :id",
        id=second["id"],
        m=json.dumps([offset(40)]),
    )

    listed = await seg.http.get("/calibrations")
    assert listed.status_code == 200, listed.text
    by_id = {c["id"]: c for c in listed.json()}
    assert by_id[created.json()["id"]]["measured_offsets"] is None
    assert by_id[created.json()["id"]]["consumer_offsets"] == [offset(42)]
    assert by_id[second["id"]]["measured_offsets"] == [offset(40)]
    assert by_id[second["id"]]["consumer_offsets"] == [offset(42)]


async def test_the_openapi_document_describes_measured_offsets_as_nullable(segmentation: Segmentation) -> None:
    document = (await segmentation.http.get("/openapi.json")).json()
    calibration = document["components"]["schemas"]["CalibrationOut"]
    measured = calibration["properties"]["measured_offsets"]

    assert "measured_offsets" in calibration["required"] and "consumer_offsets" in calibration["required"]
    assert {"type": "null"} in measured["anyOf"]
    assert {"type": "array", "items": {"$ref": "#/components/schemas/ConsumerOffsetOut"}} in measured["anyOf"]
    assert "migration 0005" in measured["description"]
    listing = document["paths"]["/calibrations"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listing["items"] == {"$ref": "#/components/schemas/CalibrationOut"}
