"""The segmentation read API's inputs and lists, found wanting by QA: instants out of range and blank reasons
are 422s naming the field (not 500 / 409), an unknown segment is a 422 (not an empty list), the region
matches in any case, the list filters by R and F score (a cell of the grid), it shows only a live alert,
and the activity distribution comes in lifecycle order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from engine_harness import T0, Segmentation, placed, registered
from pydantic import TypeAdapter
from sqlalchemy import text

from segmentation.entrypoints.schemas import CLOSE_REASON_MAX, OPERATOR_MAX
from shared.events.vocabulary import Reason

pytestmark = pytest.mark.integration


async def six_customers(seg: Segmentation) -> None:
    """c-1 … c-6, in East (odd) and West (even), one order each of 100 … 600, ten days ago."""
    at = T0 - timedelta(days=10)
    await seg.feed(
        *(
            e
            for i in range(1, 7)
            for e in (registered(f"c-{i}", "East" if i % 2 else "West"), placed(f"c-{i}", f"o-{i}", 100 * i, at))
        )
    )


async def write(seg: Segmentation, sql: str, **params: object) -> None:
    async with seg.container.engine.begin() as conn:
        await conn.execute(text(sql), params)


def field_error(response: Any) -> tuple[int, list[list[str]]]:
    return response.status_code, [e["loc"] for e in response.json()["detail"]]


async def test_instants_beyond_the_range_of_dates_are_a_422_naming_the_field(segmentation: Segmentation) -> None:
    beyond = "9999-12-31T23:59:59-01:00"  # 10000-01-01 in UTC: no such datetime

    snooze = await segmentation.http.post("/alerts/al-any/snooze", json={"until": beyond})
    calibration = await segmentation.http.post("/calibrations", json={"as_of": beyond})
    before_1970 = await segmentation.http.post("/calibrations", json={"as_of": "1969-12-31T23:59:59Z"})

    assert field_error(snooze) == (422, [["body", "until"]])
    assert field_error(calibration) == (422, [["body", "as_of"]])
    assert field_error(before_1970) == (422, [["body", "as_of"]])


async def test_a_calibration_as_of_an_instant_in_the_future_is_refused(segmentation: Segmentation) -> None:
    await six_customers(segmentation)

    ahead = await segmentation.http.post("/calibrations", json={"as_of": "9999-12-31T00:00:00Z"})
    past = await segmentation.http.post("/calibrations", json={"as_of": (T0 - timedelta(days=1)).isoformat()})

    assert field_error(ahead) == (422, [["body", "as_of"]])
    assert ahead.json()["code"] == "in_the_future"
    assert past.status_code == 201, past.text


async def test_a_close_reason_of_blanks_is_a_422_naming_the_reason(segmentation: Segmentation) -> None:
    for reason in ("", "   ", "\t\n"):
        response = await segmentation.http.post("/alerts/al-any/closure", json={"reason": reason})
        assert field_error(response) == (422, [["body", "reason"]]), reason
    blank_operator = await segmentation.http.post("/alerts/al-any/acknowledgement", json={"by": "  "})
    assert field_error(blank_operator) == (422, [["body", "by"]])


async def test_a_close_reason_or_operator_the_public_event_could_not_carry_is_a_422(segmentation: Segmentation) -> None:
    # "closed by <operator>: <reason>" becomes ChurnRiskCleared.reason: the contract's 500 characters, no
    # personal data — refused at the API (422), not at the event (500)
    for body, field in (
        ({"reason": "customer asked: li@example.com"}, "reason"),
        ({"reason": "x" * (CLOSE_REASON_MAX + 1)}, "reason"),
        ({"reason": "won back", "by": "+44 20 7946 0958"}, "by"),
    ):
        response = await segmentation.http.post("/alerts/al-any/closure", json=body)
        assert field_error(response) == (422, [["body", field]]), body
    longest = f"closed by {'o' * OPERATOR_MAX}: {'r' * CLOSE_REASON_MAX}"
    assert TypeAdapter(Reason).validate_python(longest) == longest  # what the API lets through fits


async def test_an_unknown_segment_is_a_422_naming_it_and_the_known_ones(segmentation: Segmentation) -> None:
    await six_customers(segmentation)

    response = await segmentation.http.get("/customers", params={"segment": "bogus"})

    assert field_error(response) == (422, [["query", "segment"]])
    [error] = response.json()["detail"]
    assert "champions" in error["msg"] and error["input"] == "bogus"
    assert (await segmentation.http.get("/customers", params={"segment": "champions"})).status_code == 200


async def test_the_region_matches_in_any_case_and_the_regions_are_listed(segmentation: Segmentation) -> None:
    await six_customers(segmentation)

    for typed in ("west", "WEST", "West"):
        page = (await segmentation.http.get("/customers", params={"region": typed})).json()
        assert (page["total"], {c["region"] for c in page["items"]}) == (3, {"West"}), typed
    regions = (await segmentation.http.get("/distributions/regions")).json()

    assert regions["customers"] == 6
    assert [(r["key"], r["customers"]) for r in regions["regions"]] == [("East", 3), ("West", 3)]
    assert [r["revenue"] for r in regions["regions"]] == ["900.0000", "1200.0000"]


async def test_the_list_filters_by_r_and_f_score_the_cells_of_the_grid(segmentation: Segmentation) -> None:
    seg = segmentation
    await six_customers(seg)
    await write(seg, "UPDATE customer_segments SET r_score = 5, f_score = 4 WHERE customer_id IN ('c-1', 'c-2')")
    await write(seg, "UPDATE customer_segments SET r_score = 5, f_score = 5 WHERE customer_id = 'c-3'")
    await write(seg, "UPDATE customer_segments SET r_score = 4, f_score = 4 WHERE customer_id = 'c-4'")

    cell = (await seg.http.get("/customers", params={"r_score": 5, "f_score": 4, "sort": "customer"})).json()
    row = (await seg.http.get("/customers", params={"r_score": 5})).json()

    assert (cell["total"], [c["customer_id"] for c in cell["items"]]) == (2, ["c-1", "c-2"])
    assert row["total"] == 3
    assert field_error(await seg.http.get("/customers", params={"f_score": 6})) == (422, [["query", "f_score"]])
    assert field_error(await seg.http.get("/customers", params={"r_score": 0})) == (422, [["query", "r_score"]])


async def test_the_list_shows_a_live_alert_and_not_a_closed_one(segmentation: Segmentation) -> None:
    seg = segmentation
    await six_customers(seg)
    for alert_id, customer_id, state in (("al-open", "c-1", "open"), ("al-closed", "c-2", "closed")):
        await write(
            seg,
            "INSERT INTO churn_alerts (alert_id, customer_id, state, raised_at, raised_score, reasons, last_score, "
            "last_seen_at, occurrences, rearmed) VALUES (:a, :c, :s, :t, 70, '[]', 70, :t, 1, false)",
            a=alert_id,
            c=customer_id,
            s=state,
            t=T0,
        )
        await write(seg, "UPDATE customer_segments SET alert_id = :a WHERE customer_id = :c", a=alert_id, c=customer_id)

    page = (await seg.http.get("/customers", params={"sort": "customer"})).json()

    alerts = {c["customer_id"]: (c["alert_id"], c["alert_state"]) for c in page["items"]}
    assert alerts["c-1"] == ("al-open", "open")
    assert alerts["c-2"] == (None, None)  # its alert_id column still names the closed alert
    assert alerts["c-3"] == (None, None)
    assert page["total"] == 6


async def test_the_activity_distribution_comes_in_lifecycle_order_not_graded_last(segmentation: Segmentation) -> None:
    seg = segmentation
    await six_customers(seg)
    statuses = {"c-1": "lost", "c-2": None, "c-3": "reactivated", "c-4": "dormant", "c-5": "at_risk"}
    for customer_id, status in statuses.items():
        await write(
            seg, "UPDATE customer_segments SET activity_status = :s WHERE customer_id = :c", s=status, c=customer_id
        )

    activity = (await seg.http.get("/distributions")).json()["activity"]

    assert [r["key"] for r in activity] == ["active", "at_risk", "dormant", "lost", "reactivated", None]
