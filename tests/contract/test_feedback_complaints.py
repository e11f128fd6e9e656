"""One contract for the feedback ``Complaints`` port, run against the in-memory fake and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from feedback.adapters.in_memory import InMemoryComplaints
from feedback.adapters.postgres import PostgresComplaints
from feedback.application.ports import Complaints, ComplaintSummary
from feedback.application.public_events import to_public
from feedback.domain.complaint import Complaint, ComplaintStatus
from feedback.domain.sla import DEFAULT_SLA_POLICY
from shared.db.engine import create_engine
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import ConcurrencyConflict, EventStore, InMemoryEventStore, PostgresEventStore

pytestmark = pytest.mark.contract

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def repository(store: EventStore) -> AggregateRepository[Complaint]:
    return AggregateRepository(store, Complaint, producer="feedback", topic="crm.feedback.v1", to_public=to_public)


def new(complaint_id: str, customer_id: str = "c-1", filed_at: datetime = T0, severity: str = "high") -> Complaint:
    return Complaint.file(
        complaint_id,
        customer_id,
        category="delivery",
        severity=severity,
        summary="late",
        order_id=None,
        filed_at=filed_at,
        policy=DEFAULT_SLA_POLICY,
    )


class ComplaintsContract:
    async def test_a_saved_complaint_reads_back_with_its_summary(self, complaints: Complaints) -> None:
        complaint = new("k-1")
        await complaints.save(complaint, correlation_id="t")
        loaded = await complaints.get("k-1")
        assert loaded is not None
        assert ComplaintSummary.of(loaded) == ComplaintSummary.of(complaint)
        assert [e.event_type for e in await complaints.history("k-1")] == ["ComplaintFiled"]
        page = await complaints.for_customer("c-1", status=None, limit=10, offset=0)
        assert page.items == [ComplaintSummary.of(complaint)]

    async def test_due_complaints_come_in_deadline_order_strictly_before_now(self, complaints: Complaints) -> None:
        for n, offset in enumerate([3, 1, 2]):
            await complaints.save(new(f"k-{n}", filed_at=T0 + timedelta(hours=offset)), correlation_id="t")
        ack_of_k1 = T0 + timedelta(hours=1 + 4)
        assert await complaints.due_for_escalation(ack_of_k1, limit=10) == []  # at the deadline: still in time
        due = await complaints.due_for_escalation(T0 + timedelta(hours=8), limit=10)
        assert [d.complaint_id for d in due] == ["k-1", "k-2", "k-0"]
        first = await complaints.due_for_escalation(T0 + timedelta(hours=8), limit=2)
        rest = await complaints.due_for_escalation(T0 + timedelta(hours=8), limit=2, after=first[-1].cursor)
        assert [d.complaint_id for d in first + rest] == ["k-1", "k-2", "k-0"]

    async def test_complaints_without_a_watched_deadline_are_never_due(self, complaints: Complaints) -> None:
        complaint = new("k-1")
        complaint.resolve("refund")
        await complaints.save(complaint, correlation_id="t")
        assert await complaints.due_for_escalation(T0 + timedelta(days=60), limit=10) == []

    async def test_a_customers_complaints_page_newest_first_with_the_total(self, complaints: Complaints) -> None:
        for n in range(4):
            complaint = new(f"k-{n}", filed_at=T0 + timedelta(minutes=n))
            if n % 2:
                complaint.acknowledge(None)
            await complaints.save(complaint, correlation_id="t")
        await complaints.save(new("x", customer_id="c-2"), correlation_id="t")
        page = await complaints.for_customer("c-1", status=None, limit=3, offset=1)
        assert ([s.complaint_id for s in page.items], page.total) == (["k-2", "k-1", "k-0"], 4)
        page = await complaints.for_customer("c-1", status=ComplaintStatus.ACKNOWLEDGED, limit=10, offset=0)
        assert ([s.complaint_id for s in page.items], page.total) == (["k-3", "k-1"], 2)

    async def test_a_stale_save_is_a_conflict_and_leaves_the_row_alone(self, complaints: Complaints) -> None:
        await complaints.save(new("k-1"), correlation_id="t")
        first, second = await complaints.get("k-1"), await complaints.get("k-1")
        assert first is not None and second is not None
        first.acknowledge("a")
        await complaints.save(first, correlation_id="t")
        second.resolve("r")
        with pytest.raises(ConcurrencyConflict):
            await complaints.save(second, correlation_id="t")
        latest = await complaints.get("k-1")
        assert latest is not None
        with pytest.raises(ConcurrencyConflict):
            await complaints.save(latest, correlation_id="t", expected_version=1)
        [row] = (await complaints.for_customer("c-1", status=None, limit=10, offset=0)).items
        assert (row.status, row.version) == (ComplaintStatus.ACKNOWLEDGED, 2)

    async def test_saving_nothing_rewrites_the_row_only_at_the_current_version(self, complaints: Complaints) -> None:
        await complaints.save(new("k-1"), correlation_id="t")
        stale = await complaints.get("k-1")
        current = await complaints.get("k-1")
        assert stale is not None and current is not None
        current.acknowledge(None)
        await complaints.save(current, correlation_id="t")
        with pytest.raises(ConcurrencyConflict):
            await complaints.save(stale, correlation_id="t")
        await complaints.save(current, correlation_id="t")  # nothing pending: same version, fine
        [row] = (await complaints.for_customer("c-1", status=None, limit=10, offset=0)).items
        assert row == ComplaintSummary.of(current)


class TestInMemoryComplaints(ComplaintsContract):
    @pytest.fixture
    def complaints(self) -> Complaints:
        return InMemoryComplaints(repository(InMemoryEventStore()))


class TestPostgresComplaints(ComplaintsContract):
    @pytest.fixture
    async def complaints(self, database_factory) -> AsyncIterator[Complaints]:
        engine = create_engine(await database_factory("feedback"))
        yield PostgresComplaints(engine, repository(PostgresEventStore(engine)))
        await engine.dispose()
