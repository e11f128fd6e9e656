"""Sums are not bounded by what one amount may be (QA of the demo): a single amount is at most 14 digits
before the point (NUMERIC(18, 4), the contract's decimal string), but a customer's lifetime totals, net
contribution, spend windows and overdue total, and the revenue per tier, segment or region, grow past it.

Before the fix the customer's OrderPlaced events were dead-lettered ("numeric field overflow" writing
``customer_segments``), ``GET /distributions`` answered 500 (the response's revenue was a bounded decimal
string) and CustomerTierChanged could not carry the customer's net contribution."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest
from engine_harness import T0, Segmentation, placed, registered, wrap

from segmentation.__main__ import DEFINITION
from shared.db.engine import to_libpq_url
from shared.db.migrations import upgrade
from shared.events import orders
from shared.events.envelope import Money
from shared.events.vocabulary import OverdueBucket

pytestmark = pytest.mark.integration

SIX = "60000000000000"  # 6 × 10¹³: three of them pass 10¹⁴
LARGEST = "99999999999999.9999"  # the largest amount one order may have


def cancelled(customer_id: str, order_id: str, amount: str) -> orders.OrderCancelled:
    return orders.OrderCancelled(order_id=order_id, amount=Money(amount=Decimal(amount)), reason="duplicate order")


def paid(order_id: str, amount: str) -> orders.PaymentReceived:
    return orders.PaymentReceived(
        order_id=order_id,
        payment_id=f"{order_id}-p",
        amount=Money(amount=Decimal(amount)),
        outstanding=Money(amount=Decimal(0)),
        paid_in_full=True,
    )


def returned(order_id: str, amount: str, return_id: str = "r") -> orders.OrderReturned:
    return orders.OrderReturned(
        order_id=order_id, return_id=f"{order_id}-{return_id}", amount=Money(amount=Decimal(amount)), reason="damaged"
    )


def overdue(order_id: str, amount: str, days: int) -> orders.PaymentOverdue:
    return orders.PaymentOverdue(
        order_id=order_id,
        days_overdue=days,
        bucket=OverdueBucket.for_days(days),
        amount=Money(amount=Decimal(amount)),
        due_date=(T0 - timedelta(days=days)).date(),
    )


async def figures(seg: Segmentation, customer_id: str) -> dict[str, object]:
    [row] = await seg.rows(
        "SELECT orders_count, cancelled_orders, gross_revenue, cancelled_amount, returned_amount, net_revenue, "
        "net_contribution, spend_last_90, average_order_value FROM customer_segments WHERE customer_id = :c",
        c=customer_id,
    )
    return row


async def test_a_customer_whose_orders_sum_past_one_amount_is_projected_and_published(
    segmentation: Segmentation,
) -> None:
    at = T0 - timedelta(days=10)
    await segmentation.feed(registered("big"), placed("big", "o-1", SIX, at), placed("big", "o-2", SIX, at))
    await segmentation.feed(placed("big", "o-3", SIX, at))  # another poll, as the live consumer might
    calibration = await segmentation.http.post("/calibrations")  # RFM scores: the segment is published
    await segmentation.feed(wrap(cancelled("big", "o-1", SIX), "big", at), wrap(paid("o-2", SIX), "big", at))

    after_orders = await figures(segmentation, "big")
    await segmentation.feed(wrap(returned("o-3", SIX), "big", at))
    after_return = await figures(segmentation, "big")
    view = await segmentation.http.get("/customers/big/view")
    tiers = await segmentation.published("CustomerTierChanged")
    segments = await segmentation.published("CustomerRfmSegmentChanged")

    assert after_orders == {
        "orders_count": 3,
        "cancelled_orders": 1,
        "gross_revenue": Decimal("180000000000000"),
        "cancelled_amount": Decimal(SIX),
        "returned_amount": Decimal(0),
        "net_revenue": Decimal("120000000000000"),
        "net_contribution": Decimal("120000000000000"),
        "spend_last_90": Decimal("120000000000000"),
        "average_order_value": Decimal(SIX),  # over the live orders
    }
    assert after_return["net_revenue"] == Decimal(SIX)  # the return's order was never lost
    assert after_return["returned_amount"] == Decimal(SIX)
    assert calibration.status_code == 201, calibration.text
    assert view.status_code == 200, view.text
    assert view.json()["figures"]["gross_revenue"] == "180000000000000.0000"
    assert view.json()["tier"]["net_contribution"] == "60000000000000.0000"
    # vip on the first poll; then small against the cut points of the calibration, all at its 1.8 × 10¹⁴
    first, demoted = (e.data.model_dump(mode="json") for e in tiers)
    assert first["net_contribution"]["amount"] == "120000000000000"
    assert demoted["net_contribution"]["amount"] == "120000000000000.0000"
    assert demoted["cut_points"]["vip"] == "180000000000000.0000"
    nets = [e.data.model_dump(mode="json")["net_amount"]["amount"] for e in segments]
    assert nets[0] == "180000000000000.0000"  # at the calibration, before the cancellation
    assert view.json()["tier"]["cut_points"]["vip"] == "180000000000000.0000"
    details = [h["details"] for h in view.json()["history"]["tier"]]  # latest first
    assert [Decimal(d["net_contribution"]) for d in details] == [Decimal("120000000000000")] * 2
    assert details[0]["cut_points"]["vip"] == "180000000000000.0000"


async def test_churn_evidence_and_overdue_totals_past_one_amount_are_kept_and_published(
    segmentation: Segmentation,
) -> None:
    before = T0 - timedelta(days=120)  # in the previous 90 days' spend
    await segmentation.feed(
        registered("owing"),
        placed("owing", "o-1", SIX, before),
        placed("owing", "o-2", SIX, before),
        placed("owing", "o-3", "1", T0 - timedelta(days=100)),  # nothing since: cadence breached
    )
    await segmentation.feed(wrap(overdue("o-1", SIX, 95), "owing", T0), wrap(overdue("o-2", SIX, 95), "owing", T0))

    [row] = await segmentation.rows(
        "SELECT overdue_amount, spend_previous_90, churn_reasons FROM customer_segments WHERE customer_id = 'owing'"
    )
    view = await segmentation.http.get("/customers/owing/view")
    evidence = {r["code"]: r["evidence"] for r in row["churn_reasons"]}
    [raised] = await segmentation.published("ChurnRiskRaised")

    assert row["overdue_amount"] == Decimal("120000000000000")
    assert row["spend_previous_90"] == Decimal("120000000000001")
    assert Decimal(evidence["spend_down"]["spend_previous_90"]) == Decimal("120000000000001")
    assert Decimal(evidence["receivables_overdue_90_plus"]["amount"]) == Decimal("120000000000000")
    assert raised.data.model_dump(mode="json")["reasons"] == row["churn_reasons"]  # the same evidence, published
    assert view.status_code == 200, view.text
    assert view.json()["churn"]["overdue_amount"] == "120000000000000.0000"
    assert view.json()["activity"]["spend_previous_90"] == "120000000000001.0000"


async def test_distributions_answer_when_the_revenue_passes_one_amount(segmentation: Segmentation) -> None:
    at = T0 - timedelta(days=10)
    await segmentation.feed(
        registered("c-1", "East"),
        placed("c-1", "o-1", LARGEST, at),
        registered("c-2", "West"),
        placed("c-2", "o-2", "1", at),
    )

    distributions = await segmentation.http.get("/distributions")
    regions = await segmentation.http.get("/distributions/regions")
    customers = await segmentation.http.get("/customers", params={"sort": "contribution"})

    assert distributions.status_code == 200, distributions.text
    assert distributions.json()["revenue"] == "100000000000000.9999"
    tiers = {t["key"]: t for t in distributions.json()["tiers"]}
    assert sum(Decimal(t["revenue"]) for t in tiers.values()) == Decimal("100000000000000.9999")
    assert regions.status_code == 200, regions.text
    shares = {r["key"]: r["revenue_share_pct"] for r in regions.json()["regions"]}
    assert shares == {"East": "100.00", "West": "0.00"}
    assert customers.status_code == 200, customers.text


async def test_the_returns_of_one_order_are_summed_without_a_bound(segmentation: Segmentation) -> None:
    """The contract bounds each return, not their sum (the orders service keeps it within the order)."""
    at = T0 - timedelta(days=10)
    await segmentation.feed(registered("back"), placed("back", "o-1", LARGEST, at))
    await segmentation.feed(*(wrap(returned("o-1", SIX, f"r{i}"), "back", at) for i in range(2)))

    [order] = await segmentation.rows("SELECT returned_amount FROM customer_orders WHERE customer_id = 'back'")

    assert order["returned_amount"] == Decimal("120000000000000")


async def test_the_migration_widens_the_totals_and_keeps_their_values(unmigrated_database: str) -> None:
    url = unmigrated_database
    await upgrade(DEFINITION.migrations, url, "0007")
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        await conn.execute(
            "INSERT INTO customer_segments (customer_id, registered, orders_count, cancelled_orders, gross_revenue, "
            "cancelled_amount, returned_amount, net_revenue, complaints_total, open_complaints, events_applied, "
            "segmentation_version, first_seen_at, value_tier, net_contribution) "
            "VALUES ('c-1', true, 1, 0, 99999999999999.9999, 0, 0, 5.5, 0, 0, 1, 1, now(), 'vip', 12.25)"
        )
        await upgrade(DEFINITION.migrations, url, "head")
        kept = await conn.fetchrow(
            "SELECT gross_revenue::text, net_revenue::text, net_contribution::text FROM customer_segments"
        )
        await conn.execute(
            "UPDATE customer_segments SET gross_revenue = 1000000000000000.1234, spend_last_90 = 10::numeric ^ 20"
        )
        widened = await conn.fetchval("SELECT gross_revenue::text FROM customer_segments")
        columns = await conn.fetch(
            "SELECT c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname IN ('customer_segments', 'customer_orders') "
            "AND a.atttypid = 'numeric'::regtype AND a.attnum > 0"
        )
        types = {column: shape for column, shape in columns}
    finally:
        await conn.close()

    assert kept is not None and tuple(kept) == ("99999999999999.9999", "5.5000", "12.2500")
    assert widened == "1000000000000000.1234"
    assert types["customer_segments.gross_revenue"] == "numeric(1000,4)"
    assert types["customer_segments.overdue_amount"] == "numeric(1000,4)"
    assert types["customer_orders.returned_amount"] == "numeric(1000,4)"
    assert types["customer_orders.amount"] == "numeric(18,4)"  # one amount keeps its bound
    assert types["customer_segments.csat_average"] == "numeric(4,2)"
