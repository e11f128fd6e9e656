"""The SLA sweep over the in-memory fakes, with a fake clock: one escalation per breach, whatever
the number of runs, pages or concurrent sweepers."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from feedback_fakes import Service

from feedback.application.handlers import (
    AcknowledgeComplaint,
    FileComplaint,
    ReopenComplaint,
    ResolveComplaint,
)
from feedback.application.ports import ComplaintSummary
from feedback.application.sweep import EscalationSweep, run_periodically
from feedback.domain.complaint import Complaint
from feedback.domain.sla import DEFAULT_SLA
from shared.eventsourcing.store import ConcurrencyConflict

pytestmark = pytest.mark.unit

HIGH = DEFAULT_SLA["high"]


async def file(service: Service, complaint_id: str = "k-1", severity: str = "high") -> Complaint:
    cmd = FileComplaint("c-1", "delivery", severity, "late truck", complaint_id=complaint_id)
    return await service.handlers.file_complaint(cmd, "test")


def escalations_of(service: Service, complaint_id: str = "k-1") -> list[dict]:
    stream = service.store.streams[f"complaint-{complaint_id}"]
    return [e.data for e in stream if e.event_type == "ComplaintEscalated"]


async def test_nothing_is_escalated_while_every_deadline_is_ahead(service: Service) -> None:
    await file(service)
    service.clock.advance(hours=4)  # exactly at the acknowledge deadline
    report = await service.sweep.run_once()
    assert (report.examined, report.escalations) == (0, 0)
    assert escalations_of(service) == []


async def test_a_missed_acknowledgement_is_escalated_once_however_often_the_sweep_runs(service: Service) -> None:
    await file(service)
    service.clock.advance(hours=5, minutes=30)
    first = await service.sweep.run_once()
    service.clock.advance(minutes=10)
    second = await service.sweep.run_once()
    assert (first.escalations, second.escalations, second.examined) == (1, 0, 0)
    assert escalations_of(service) == [
        {
            "complaint_id": "k-1",
            "breach": "acknowledge",
            "deadline": "2026-05-04T12:00:00Z",
            "overdue_by_hours": 1,
        }
    ]


async def test_each_deadline_is_escalated_when_it_passes(service: Service) -> None:
    await file(service)
    await service.handlers.acknowledge(AcknowledgeComplaint("k-1", "agent-7"), "test")
    service.clock.advance(hours=5)
    assert (await service.sweep.run_once()).escalations == 0  # acknowledged in time
    service.clock.advance(days=3)
    assert (await service.sweep.run_once()).escalations == 1
    assert [e["breach"] for e in escalations_of(service)] == ["resolve"]
    assert service.complaints.rows["k-1"].next_escalation_at is None


async def test_a_reopened_complaint_can_be_escalated_again_for_its_new_deadline(service: Service) -> None:
    await file(service)
    service.clock.advance(days=4)
    await service.sweep.run_once()  # acknowledge + resolve breaches
    await service.handlers.resolve(ResolveComplaint("k-1", "replacement shipped"), "test")
    reopened_at = service.clock.advance(hours=2)
    await service.handlers.reopen(ReopenComplaint("k-1", "still broken"), "test")
    assert service.complaints.rows["k-1"].next_escalation_at == reopened_at + HIGH.resolve_within
    service.clock.advance(days=2)
    assert (await service.sweep.run_once()).escalations == 0
    service.clock.advance(days=1, hours=1)
    assert (await service.sweep.run_once()).escalations == 1
    assert (await service.sweep.run_once()).escalations == 0
    assert [(e["breach"], e["deadline"]) for e in escalations_of(service)] == [
        ("acknowledge", "2026-05-04T12:00:00Z"),
        ("resolve", "2026-05-07T08:00:00Z"),
        ("resolve", "2026-05-11T10:00:00Z"),
    ]


async def test_one_run_walks_every_page_of_due_complaints(service: Service) -> None:
    sweep = EscalationSweep(service.complaints, clock=service.clock, batch_size=2)
    for n in range(5):
        await file(service, f"k-{n}")
    service.clock.advance(hours=5)
    report = await sweep.run_once()
    assert (report.examined, report.escalated_complaints, report.escalations) == (5, 5, 5)
    assert all(len(escalations_of(service, f"k-{n}")) == 1 for n in range(5))


async def test_escalations_are_published_through_the_outbox_with_the_customer_as_key(service: Service) -> None:
    await file(service)
    service.clock.advance(hours=5)
    await service.sweep.run_once()
    message = service.store.outbox[-1]
    envelope = json.loads(message.value)
    assert (message.topic, message.key) == ("t.crm.feedback.v1", "c-1")
    assert envelope["event_type"] == "ComplaintEscalated"
    assert envelope["occurred_at"].startswith("2026-05-04T13:00:00")  # the injected clock
    assert envelope["correlation_id"].startswith("sla-sweep-")


async def test_a_sweep_that_loses_the_race_reloads_and_does_not_escalate_twice(service: Service) -> None:
    await file(service)
    service.clock.advance(hours=5)
    rival = EscalationSweep(service.complaints, clock=service.clock)
    complaints = service.complaints
    original_get = complaints.get

    raced = False

    async def get_then_let_the_rival_win(complaint_id: str) -> Complaint | None:
        nonlocal raced
        loaded = await original_get(complaint_id)
        if not raced:
            raced = True
            await rival.run_once()  # the rival sweep escalates between our load and our save
        return loaded

    slow = EscalationSweep(complaints, clock=service.clock)
    complaints.get = get_then_let_the_rival_win  # type: ignore[method-assign]
    report = await slow.run_once()
    assert (report.examined, report.escalations, report.skipped) == (1, 0, 0)
    assert len(escalations_of(service)) == 1


async def test_a_complaint_that_keeps_conflicting_is_skipped_until_the_next_run(service: Service) -> None:
    await file(service)
    service.clock.advance(hours=5)
    complaints = service.complaints
    attempts = 0

    async def save_while_the_stream_keeps_moving(complaint: Complaint, **_: object) -> None:
        nonlocal attempts
        attempts += 1
        raise ConcurrencyConflict(complaint.stream_id, complaint.stored_version)

    complaints.save = save_while_the_stream_keeps_moving  # type: ignore[method-assign]
    report = await EscalationSweep(complaints, clock=service.clock, max_attempts=3).run_once()
    assert (report.examined, report.skipped, report.escalations, attempts) == (1, 1, 0, 3)


async def test_a_stale_read_model_row_is_repaired_by_the_sweep(service: Service) -> None:
    complaint = await file(service)
    row = service.complaints.rows["k-1"]
    service.complaints.rows["k-1"] = ComplaintSummary(**{**vars(row), "next_escalation_at": row.filed_at})
    service.clock.advance(minutes=1)
    report = await service.sweep.run_once()
    assert (report.examined, report.escalations) == (1, 0)
    assert service.complaints.rows["k-1"].next_escalation_at == complaint.acknowledge_by


async def test_the_periodic_sweeper_runs_until_stopped_and_survives_a_failing_run(service: Service) -> None:
    runs: list[str] = []
    three_runs = asyncio.Event()

    class FlakySweep:
        async def run_once(self) -> None:
            runs.append("run")
            if len(runs) == 3:
                three_runs.set()
            if len(runs) == 1:
                raise ConnectionError("database down")

    stop = asyncio.Event()
    task = asyncio.create_task(run_periodically(FlakySweep(), stop, interval_s=0.01))  # type: ignore[arg-type]
    await asyncio.wait_for(three_runs.wait(), timeout=2)
    stop.set()
    await asyncio.wait_for(task, timeout=1)
    assert len(runs) >= 3


async def test_the_sweep_is_wired_from_settings(service: Service) -> None:
    assert service.sweep.batch_size == service.container.settings.sweep_batch_size
    assert service.sweep.clock is service.clock
    assert timedelta(hours=4) == service.handlers.sla_policy.for_severity("high").acknowledge_within
