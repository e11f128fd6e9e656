"""An event that arrives after a later event of its own stream (a re-driven dead letter) leaves the stored
projection as stream order would have: the stream versions of the facts it could overwrite are stored with
them (revision 0009) and read back by the next poll."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest
from alembic import command
from engine_harness import T0, Segmentation, placed, wrap
from structlog.testing import capture_logs

from segmentation.__main__ import DEFINITION
from shared.db.engine import to_libpq_url
from shared.db.migrations import alembic_config, upgrade
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.vocabulary import OverdueBucket
from shared.testing.events import complaint_filed

pytestmark = pytest.mark.integration

AT = T0 - timedelta(days=60)
DUE = (AT + timedelta(days=30)).date()


def money(amount: int) -> Money:
    return Money(amount=Decimal(amount))


def at_version(envelope: Envelope, version: int) -> Envelope:
    return envelope.model_copy(update={"aggregate_version": version})


def streams(cid: str) -> list[list[Envelope]]:
    """Four streams of one customer, each in stream order (versions 1, 2, …)."""

    def stream(*payloads: EventPayload) -> list[Envelope]:
        return [at_version(wrap(p, cid, AT), v) for v, p in enumerate(payloads, start=1)]

    customer = stream(
        customers.CustomerRegistered(customer_id=cid, company_name="Acme", region="East"),
        customers.CustomerProfileUpdated(changed_fields=["region"], region="North"),
        customers.CustomerProfileUpdated(changed_fields=["region"], region="West"),
        customers.CustomerDeactivated(reason="closed for the season"),
        customers.CustomerReactivated(reason="back"),
    )
    owed = stream(
        placed(cid, "o-1", 500, AT).data,
        orders.PaymentOverdue(
            order_id="o-1", days_overdue=30, bucket=OverdueBucket.for_days(30), amount=money(500), due_date=DUE
        ),
        orders.PaymentReceived(
            order_id="o-1", payment_id="p-1", amount=money(200), outstanding=money(300), paid_in_full=False
        ),
    )
    held_data = placed(cid, "o-2", 90, AT).data
    assert isinstance(held_data, orders.OrderPlaced)
    held = stream(
        held_data.model_copy(update={"status": "credit_held"}),
        orders.OrderCreditHeld(
            order_id="o-2", reasons=["over_credit_limit"], exposure=money(590), credit_limit=money(1)
        ),
        orders.OrderCreditReleased(order_id="o-2", released_by="ops-1"),
    )
    complaint = stream(
        complaint_filed(cid, "k-1", AT),
        feedback.ComplaintResolved(complaint_id="k-1", resolution="refund"),
        feedback.ComplaintReopened(complaint_id="k-1", reason="not fixed"),
    )
    return [customer, owed, held, complaint]


FACT_QUERIES = {
    "segment": "SELECT company_name, region, deactivated, overdue_amount, credit_holds, open_complaints, "
    "complaints_reopened, net_contribution, value_tier, churn_score, churn_reasons "
    "FROM customer_segments WHERE customer_id = :c",
    "orders": "SELECT order_id, credit_held, due_date, overdue_amount, paid_in_full, credit_version, "
    "outstanding_amount, receivable_version FROM customer_orders WHERE customer_id = :c ORDER BY order_id",
    "complaints": "SELECT complaint_id, status, reopened_count, status_version FROM customer_complaints "
    "WHERE customer_id = :c",
}


async def projection(seg: Segmentation, cid: str) -> dict[str, list[dict[str, object]]]:
    return {name: await seg.rows(sql, c=cid) for name, sql in FACT_QUERIES.items()}


async def test_events_arriving_after_later_events_of_their_stream_change_nothing_stream_order_would_not(
    segmentation: Segmentation,
) -> None:
    in_order = [e for s in streams("c-order") for e in s]
    await segmentation.feed(*in_order)
    # the other customer: each stream's second event held back (dead-lettered), and the deactivation
    # (customer stream, version 4) too; the rest applied ...
    late = streams("c-late")
    held_back = [s[1] for s in late] + [late[0][3]]
    await segmentation.feed(*(e for s in late for e in s if all(e is not h for h in held_back)))
    # ... and re-driven in a later poll (the next poll loads the facts and their versions from the tables)
    with capture_logs() as logs:
        await segmentation.feed(*held_back)

    expected = await projection(segmentation, "c-order")
    got = await projection(segmentation, "c-late")

    assert got == expected
    [segment] = got["segment"]
    assert (segment["region"], segment["deactivated"]) == ("West", False)
    assert (segment["overdue_amount"], segment["credit_holds"], segment["open_complaints"]) == (Decimal(300), 0, 1)
    owed, held = got["orders"]
    assert (owed["overdue_amount"], owed["outstanding_amount"], owed["receivable_version"]) == (
        Decimal(300),
        Decimal(300),
        3,
    )
    assert (held["credit_held"], held["credit_version"]) == (False, 3)
    assert got["complaints"] == [{"complaint_id": "k-1", "status": "open", "reopened_count": 1, "status_version": 3}]
    superseded = [e for e in logs if e["event"] == "facts.stale_event_superseded"]
    assert {(e["event_type"], e["stream_version"], e["applied_stream_version"]) for e in superseded} == {
        ("CustomerProfileUpdated", 2, 3),
        ("PaymentOverdue", 2, 3),
        ("OrderCreditHeld", 2, 3),
        ("ComplaintResolved", 2, 3),
        ("CustomerDeactivated", 4, 5),
    }
    assert {e["customer_id"] for e in superseded} == {"c-late"}


async def test_rows_from_before_revision_0009_start_at_version_0_and_the_downgrade_drops_the_versions(
    unmigrated_database: str,
) -> None:
    url = unmigrated_database
    await upgrade(DEFINITION.migrations, url, "0008")
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        await conn.execute(
            "INSERT INTO customer_orders (customer_id, order_id, placed_at, amount, cancelled, cancelled_amount, "
            "returned_amount, credit_held, overdue_amount, paid_in_full) "
            "VALUES ('c-1', 'o-1', now(), 500, false, 0, 0, true, 500, false)"
        )
        await conn.execute(
            "INSERT INTO customer_complaints (customer_id, complaint_id, status, acknowledged, escalated, "
            "reopened_count) VALUES ('c-1', 'k-1', 'resolved', true, false, 0)"
        )
        await conn.execute(
            "INSERT INTO customer_segments (customer_id, registered, company_name, region, deactivated, "
            "orders_count, cancelled_orders, gross_revenue, cancelled_amount, returned_amount, net_revenue, "
            "complaints_total, open_complaints, events_applied, segmentation_version, first_seen_at, value_tier) "
            "VALUES ('c-1', true, 'Acme', 'West', true, 1, 0, 500, 0, 0, 500, 1, 0, 3, 1, now(), 'normal')"
        )
        await upgrade(DEFINITION.migrations, url, "head")
        segment = await conn.fetchrow(
            "SELECT company_name, region, deactivated, company_name_version, region_version, deactivated_version "
            "FROM customer_segments"
        )
        order = await conn.fetchrow(
            "SELECT credit_held, overdue_amount, credit_version, outstanding_amount, receivable_version "
            "FROM customer_orders"
        )
        complaint = await conn.fetchrow("SELECT status, status_version FROM customer_complaints")
        await asyncio.to_thread(command.downgrade, alembic_config(DEFINITION.migrations, url), "0008")
        columns = {
            r[0]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name IN "
                "('customer_segments', 'customer_orders', 'customer_complaints')"
            )
        }
    finally:
        await conn.close()

    assert segment is not None and tuple(segment) == ("Acme", "West", True, 0, 0, 0)
    assert order is not None and tuple(order) == (True, Decimal(500), 0, None, 0)
    assert complaint is not None and tuple(complaint) == ("resolved", 0)
    assert not columns & {"credit_version", "outstanding_amount", "receivable_version", "status_version"}
    assert not columns & {"company_name_version", "region_version", "deactivated_version"}
