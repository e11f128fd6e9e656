"""The segmentation engine on real PostgreSQL with a fixed clock, driven through its events and its API:
recalibration, frozen cut points, the sweep, churn alerts and their handling, the read API."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from engine_harness import T0, Segmentation, placed, registered, wrap

from segmentation.application.recalibration import recalibrate, recalibration_due
from segmentation.application.sweep import sweep
from shared.events import feedback, orders
from shared.events.envelope import Money
from shared.events.vocabulary import OverdueBucket
from shared.testing.events import complaint_filed

pytestmark = pytest.mark.integration


async def twenty_customers(seg: Segmentation) -> None:
    """c-01 … c-20 with one order each of 100 … 2000, ten days ago."""
    events = []
    for i in range(1, 21):
        cid = f"c-{i:02d}"
        events += [
            registered(cid, "East" if i % 2 else "West"),
            placed(cid, f"{cid}-o1", 100 * i, T0 - timedelta(days=10)),
        ]
    await seg.feed(*events)


async def test_a_recalibration_is_recorded_regrades_everyone_and_live_events_use_the_frozen_cut_points(
    segmentation: Segmentation,
) -> None:
    seg = segmentation
    await twenty_customers(seg)
    before = (await seg.http.get("/customers/c-20/segment")).json()
    assert before["value_tier"] == "normal"  # provisional absolute thresholds: 2000 ≥ 500

    response = await seg.http.post("/calibrations", json={})
    assert response.status_code == 201, response.text
    calibration = response.json()
    # N = 20: vip = the largest, key-or-vip = the top 5, small = the lowest one
    assert calibration["cut_points"] == {"vip": "2000.0000", "key": "1600.0000", "normal": "200.0000"}
    assert (calibration["population"], calibration["customers_graded"], calibration["trigger"]) == (20, 20, "api")
    assert calibration["effective_at"].startswith("2026-03-02T09:00:00")
    tiers = {t["key"]: t["customers"] for t in (await seg.http.get("/distributions")).json()["tiers"]}
    assert tiers == {"vip": 1, "key": 4, "normal": 14, "small": 1, "prospect": 0}

    view = (await seg.http.get("/customers/c-20/view")).json()
    assert (view["tier"]["value_tier"], view["tier"]["calibration_id"]) == ("vip", calibration["id"])
    assert view["tier"]["cut_points"]["vip"] == "2000.0000"
    latest_tier_change = view["history"]["tier"][0]
    assert (latest_tier_change["previous"], latest_tier_change["new"]) == ("normal", "vip")
    assert latest_tier_change["details"]["cut_points"]["key"] == "1600.0000"
    assert view["rfm"]["segment"] is not None and view["rfm"]["segment_label"] is not None

    changed = await seg.published("CustomerTierChanged")
    from_calibration = [e for e in changed if e.correlation_id == f"calibration-{calibration['id']}"]
    # provisional small (< 500) c-02…c-04 become normal; c-16…c-20 rise to key and vip
    assert {e.customer_id for e in from_calibration} == {"c-02", "c-03", "c-04", "c-16", "c-17", "c-18", "c-19", "c-20"}
    assert len(await seg.published("CustomerRfmSegmentChanged")) == 20

    # A live order lifts c-02 (200) to 1700 ≥ the frozen key cut point; nothing is recalibrated.
    seg.clock.advance(timedelta(hours=1))
    await seg.feed(placed("c-02", "c-02-o2", 1500, seg.clock()))
    c02 = (await seg.http.get("/customers/c-02/view")).json()
    assert (c02["tier"]["value_tier"], c02["tier"]["net_contribution"]) == ("key", "1700.0000")
    [promotion] = [e.data for e in await seg.published("CustomerTierChanged") if e.customer_id == "c-02"][-1:]
    assert promotion.cut_points["key"] == Decimal("1600.0000") and "OrderPlaced" in promotion.reason
    assert len((await seg.http.get("/calibrations")).json()) == 1


async def test_demotion_waits_for_the_margin_or_a_second_recalibration(segmentation: Segmentation) -> None:
    seg = segmentation
    await twenty_customers(seg)
    await seg.http.post("/calibrations", json={})
    # c-16 (1600, key) returns 100 → 1500: below key (1600) but within the 10 % margin → still key
    await seg.feed(
        wrap(
            orders.OrderReturned(order_id="c-16-o1", return_id="r1", amount=Money(amount=Decimal(100)), reason="x"),
            "c-16",
        )
    )
    row = (await seg.http.get("/customers/c-16/view")).json()["tier"]
    assert (row["value_tier"], row["candidate_tier"]) == ("key", "normal")
    # the next recalibration computes new cut points (1500 is now the 5th largest → still key-worthy)…
    second = (await seg.http.post("/calibrations", json={})).json()
    assert second["cut_points"]["key"] == "1500.0000"
    assert (await seg.http.get("/customers/c-16/segment")).json()["value_tier"] == "key"


async def test_recalibration_is_due_one_interval_after_the_first_customer_then_after_each_calibration(
    segmentation: Segmentation,
) -> None:
    seg = segmentation
    await twenty_customers(seg)
    assessor = seg.container.parts["assessor"]
    async with seg.container.engine.connect() as conn:
        assert not await recalibration_due(conn, assessor, T0 + timedelta(days=6))
        assert await recalibration_due(conn, assessor, T0 + timedelta(days=7))
    done = await recalibrate(
        seg.container.engine, assessor, as_of=T0 + timedelta(days=7), trigger="scheduled", only_if_due=True
    )
    assert done is not None
    again = await recalibrate(
        seg.container.engine, assessor, as_of=T0 + timedelta(days=8), trigger="scheduled", only_if_due=True
    )
    assert again is None
    async with seg.container.engine.connect() as conn:
        assert await recalibration_due(conn, assessor, T0 + timedelta(days=14))


async def test_the_sweep_moves_customers_through_activity_and_raises_then_handles_a_churn_alert(
    segmentation: Segmentation,
) -> None:
    seg = segmentation
    cid = "c-risk"
    start = T0 - timedelta(days=40)
    await seg.feed(
        registered(cid),
        *(placed(cid, f"o-{n}", 500, start + timedelta(days=10 * n)) for n in range(4)),  # every 10 days
        wrap(feedback.SurveyAnswered(survey_id="s-1", customer_id=cid, nps=3, answered_at=start), cid, start),
        wrap(complaint_filed(cid, "k-1", T0), cid),
    )
    row = (await seg.http.get(f"/customers/{cid}/view")).json()
    assert (row["activity"]["status"], row["churn"]["score"]) == ("active", 15)  # the detractor survey only

    # 45 days later: beyond 2 × the 10-day cadence (and 3 ×) → dormant; the order of day 30 is overdue.
    seg.clock.advance(timedelta(days=45))
    await seg.feed(
        wrap(
            orders.PaymentOverdue(
                order_id="o-3",
                days_overdue=25,
                bucket=OverdueBucket.DAYS_1_30,
                amount=Money(amount=Decimal(500)),
                due_date=date(2026, 3, 22),
            ),
            cid,
            seg.clock(),
        )
    )
    result = await sweep(seg.container.engine, seg.container.parts["assessor"], now=seg.clock())
    assert result.customers == 1
    row = (await seg.http.get(f"/customers/{cid}/view")).json()
    assert row["activity"]["status"] == "dormant"
    assert row["churn"]["score"] >= 60 and row["churn"]["band"] == "high"
    codes = {r["code"] for r in row["churn"]["reasons"]}
    # 25 cadence + 15 complaint past its SLA + 15 detractor + 5 receivable 1–30 days overdue = 60
    assert codes == {"cadence_breach", "complaint_overdue", "detractor_survey", "receivables_overdue_1_30"}
    activity = [e.data for e in await seg.published("CustomerActivityChanged")]
    assert activity[-1].new_status == "dormant"

    alerts = (await seg.http.get("/alerts")).json()
    assert alerts["total"] == 1
    alert_id = alerts["items"][0]["alert_id"]
    assert row["alert"]["alert_id"] == alert_id
    [raised] = await seg.published("ChurnRiskRaised")
    assert raised.data.alert_id == alert_id

    # a second sweep at the same instant changes nothing and raises nothing
    await sweep(seg.container.engine, seg.container.parts["assessor"], now=seg.clock())
    assert len(await seg.published("ChurnRiskRaised")) == 1

    seg.clock.advance(timedelta(hours=1))
    ack = await seg.http.post(f"/alerts/{alert_id}/acknowledgement", json={"by": "ops-7"})
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    assert ack.json()["handled_by"] == "ops-7"
    again = await seg.http.post(f"/alerts/{alert_id}/acknowledgement", json={})
    assert again.status_code == 409
    past = await seg.http.post(f"/alerts/{alert_id}/snooze", json={"until": "2020-01-01T00:00:00Z"})
    assert past.status_code == 409
    until = (seg.clock() + timedelta(days=3)).isoformat()
    snoozed = await seg.http.post(f"/alerts/{alert_id}/snooze", json={"until": until})
    assert snoozed.status_code == 200 and snoozed.json()["state"] == "snoozed"
    assert snoozed.json()["handled_by"].startswith("token:")
    assert (await seg.http.post(f"/alerts/{alert_id}/closure", json={"reason": " "})).status_code in (409, 422)
    closed = await seg.http.post(f"/alerts/{alert_id}/closure", json={"reason": "called the buyer; seasonal pause"})
    assert closed.status_code == 200
    body = closed.json()
    assert (body["state"], body["close_reason"]) == ("closed", "called the buyer; seasonal pause")
    assert [entry["action"] for entry in body["log"]] == ["raised", "acknowledged", "snoozed", "closed"]
    assert all(entry["at"] for entry in body["log"])
    cleared = [e.data for e in await seg.published("ChurnRiskCleared")]
    assert len(cleared) == 1 and "closed by" in cleared[0].reason
    assert (await seg.http.get("/alerts", params={"state": "closed"})).json()["total"] == 1
    assert (await seg.http.get("/alerts")).json()["total"] == 0

    # closed by hand: no new alert while the score stays high (re-armed only after a recovery)
    seg.clock.advance(timedelta(days=1))
    await sweep(seg.container.engine, seg.container.parts["assessor"], now=seg.clock())
    assert (await seg.http.get("/alerts")).json()["total"] == 0


async def test_lists_filter_sort_and_page_and_unknown_things_are_404(segmentation: Segmentation) -> None:
    seg = segmentation
    await twenty_customers(seg)
    await seg.http.post("/calibrations", json={})
    page = (await seg.http.get("/customers", params={"sort": "contribution", "limit": 3, "offset": 1})).json()
    assert page["total"] == 20 and [c["customer_id"] for c in page["items"]] == ["c-19", "c-18", "c-17"]
    west = (await seg.http.get("/customers", params={"region": "West", "tier": "key"})).json()
    assert {c["customer_id"] for c in west["items"]} == {"c-16", "c-18"} and west["total"] == 2
    by_segment = (await seg.http.get("/customers", params={"segment": "hibernating"})).json()
    assert by_segment["total"] == 0 or all(c["rfm_segment"] == "hibernating" for c in by_segment["items"])
    assert (await seg.http.get("/customers", params={"sort": "alphabet"})).status_code == 422
    assert (await seg.http.get("/customers", params={"status": "sleepy"})).status_code == 422
    distributions = (await seg.http.get("/distributions")).json()
    assert distributions["customers"] == 20 and distributions["revenue"] == "21000.0000"
    assert sum(Decimal(t["revenue_share_pct"]) for t in distributions["tiers"]) == Decimal("100.00")
    vip = next(t for t in distributions["tiers"] if t["key"] == "vip")
    assert (vip["customers"], vip["revenue"], vip["revenue_share_pct"]) == (1, "2000.0000", "9.52")
    assert (await seg.http.get("/customers/nobody/view")).status_code == 404
    assert (await seg.http.get("/alerts/al-nothing")).status_code == 404
    assert (await seg.http.post("/alerts/al-nothing/acknowledgement", json={})).status_code == 404
    assert (await seg.http.get("/customers/c-01/segment", headers={"Authorization": ""})).status_code == 401
