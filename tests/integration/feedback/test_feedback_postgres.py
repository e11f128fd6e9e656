"""Feedback against real PostgreSQL: the read model commits with the events, the SLA sweep escalates
each breach exactly once even when run twice or by concurrent sweepers, listings and the loop over
HTTP, and the ``sweep`` process role."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from feedback.adapters.postgres import PostgresComplaints
from feedback.application.handlers import (
    AcknowledgeComplaint,
    FeedbackHandlers,
    FileComplaint,
    ReopenComplaint,
    ResolveComplaint,
)
from feedback.application.sweep import EscalationSweep
from feedback.bootstrap import wire
from feedback.config import FeedbackSettings
from feedback.entrypoints.api import build_api
from shared.db.engine import create_engine
from shared.events.registry import parse_envelope
from shared.events.topics import Topics
from shared.runtime import Container

pytestmark = pytest.mark.integration

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
AUTH = {"Authorization": "Bearer dev-admin"}


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Feedback:
    url: str
    container: Container[FeedbackSettings]
    clock: FakeClock

    @property
    def handlers(self) -> FeedbackHandlers:
        return self.container.parts["handlers"]

    @property
    def complaints(self) -> PostgresComplaints:
        return self.container.parts["complaints"]

    def sweeper(self) -> EscalationSweep:
        return EscalationSweep(self.complaints, clock=self.clock, batch_size=7)

    async def rows(self, sql: str, **params: object) -> list[dict]:
        async with self.container.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(text(sql), params)).mappings()]

    async def escalations(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for row in await self.rows(
            "SELECT stream_id, data FROM events WHERE event_type = 'ComplaintEscalated' ORDER BY position"
        ):
            found.setdefault(row["stream_id"].removeprefix("complaint-"), []).append(row["data"]["breach"])
        return found


@pytest.fixture
async def feedback(database_factory, namespace: str) -> AsyncIterator[Feedback]:
    url = await database_factory("feedback")
    settings = FeedbackSettings(database_url=url)
    container = Container(settings=settings, engine=create_engine(url), topics=Topics(namespace))
    clock = FakeClock()
    wire(container, clock=clock)
    yield Feedback(url, container, clock)
    await container.close()


async def file(fb: Feedback, complaint_id: str, customer_id: str = "c-1", severity: str = "high") -> None:
    cmd = FileComplaint(customer_id, "delivery", severity, "late truck", complaint_id=complaint_id)
    await fb.handlers.file_complaint(cmd, "test")


async def test_the_read_model_row_and_the_outbox_commit_with_the_events(feedback: Feedback) -> None:
    await file(feedback, "k-1")
    await feedback.handlers.resolve(ResolveComplaint("k-1", "refund"), "test")
    feedback.clock.advance(hours=1)
    await feedback.handlers.reopen(ReopenComplaint("k-1", "refund never came"), "test")

    [row] = await feedback.rows("SELECT * FROM complaints")
    assert (row["complaint_id"], row["customer_id"], row["status"], row["version"]) == ("k-1", "c-1", "reopened", 3)
    assert row["resolve_by"] == START + timedelta(hours=1, days=3)
    assert row["next_escalation_at"] == row["resolve_by"]

    outbox = await feedback.rows("SELECT key, value FROM outbox ORDER BY id")
    envelopes = [parse_envelope(bytes(r["value"])) for r in outbox]
    assert [e.event_type for e in envelopes] == ["ComplaintFiled", "ComplaintResolved", "ComplaintReopened"]
    assert {r["key"] for r in outbox} == {"c-1"}
    assert json.loads(bytes(outbox[2]["value"]))["data"] == {
        "complaint_id": "k-1",
        "reason": "refund never came",
        "reopened_at": "2026-05-04T09:00:00Z",
    }
    [stored] = await feedback.rows("SELECT data FROM events WHERE event_type = 'ComplaintReopened'")
    assert stored["data"]["resolve_by"] == "2026-05-07T09:00:00Z"


async def test_a_refused_append_writes_no_row(feedback: Feedback) -> None:
    results = await asyncio.gather(
        *(file(feedback, "k-1", customer_id=f"c-{n}") for n in range(5)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    rows = await feedback.rows("SELECT customer_id FROM complaints")
    [event] = await feedback.rows("SELECT metadata FROM events")
    assert [r["customer_id"] for r in rows] == [event["metadata"]["customer_id"]]


async def test_the_sweep_escalates_each_breach_once_when_run_twice(feedback: Feedback) -> None:
    await file(feedback, "k-1")
    await file(feedback, "k-2", severity="low")
    feedback.clock.advance(hours=5)
    first, second = await feedback.sweeper().run_once(), await feedback.sweeper().run_once()
    assert (first.escalations, second.escalations, second.examined) == (1, 0, 0)
    feedback.clock.advance(days=3)  # k-1 missed its resolve deadline, k-2 (low: 48 h) its acknowledgement
    third = await feedback.sweeper().run_once()
    assert (third.escalated_complaints, third.escalations) == (2, 2)
    assert await feedback.escalations() == {"k-1": ["acknowledge", "resolve"], "k-2": ["acknowledge"]}
    [row] = await feedback.rows("SELECT escalations, next_escalation_at FROM complaints WHERE complaint_id = 'k-1'")
    assert row == {"escalations": 2, "next_escalation_at": None}


async def test_concurrent_sweepers_never_escalate_a_breach_twice(feedback: Feedback) -> None:
    ids = [f"k-{n:02d}" for n in range(24)]
    for complaint_id in ids:
        await file(feedback, complaint_id, customer_id=f"c-{complaint_id}")
    feedback.clock.advance(days=4)  # both deadlines of every complaint are past
    reports = await asyncio.gather(*(feedback.sweeper().run_once() for _ in range(4)))
    assert sum(r.escalations for r in reports) == 2 * len(ids)
    assert sum(r.skipped for r in reports) == 0  # every conflict (a race lost) was resolved by reloading
    assert await feedback.escalations() == {i: ["acknowledge", "resolve"] for i in ids}
    published = await feedback.rows("SELECT count(*) AS n FROM outbox WHERE headers::text LIKE '%ComplaintEscalated%'")
    assert published == [{"n": 2 * len(ids)}]
    assert (await feedback.sweeper().run_once()).examined == 0


async def test_a_reopened_complaint_is_escalated_again_for_its_new_deadline(feedback: Feedback) -> None:
    await file(feedback, "k-1")
    feedback.clock.advance(days=4)
    await feedback.sweeper().run_once()
    await feedback.handlers.resolve(ResolveComplaint("k-1", "refund"), "test")
    await feedback.handlers.reopen(ReopenComplaint("k-1", "refund never came"), "test")
    feedback.clock.advance(days=3, minutes=1)
    await asyncio.gather(feedback.sweeper().run_once(), feedback.sweeper().run_once())
    assert await feedback.escalations() == {"k-1": ["acknowledge", "resolve", "resolve"]}


async def test_reindex_rebuilds_the_read_model_from_the_streams(feedback: Feedback) -> None:
    for n in range(3):
        await file(feedback, f"k-{n}")
    await feedback.handlers.resolve(ResolveComplaint("k-1", "refund"), "test")
    before = await feedback.rows("SELECT * FROM complaints ORDER BY complaint_id")
    async with feedback.container.engine.begin() as conn:
        await conn.execute(text("DELETE FROM complaints"))
    assert await feedback.complaints.reindex_all() == 3
    after = await feedback.rows("SELECT * FROM complaints ORDER BY complaint_id")
    ignore = {"updated_at"}
    assert [{k: v for k, v in r.items() if k not in ignore} for r in after] == [
        {k: v for k, v in r.items() if k not in ignore} for r in before
    ]


async def test_the_api_over_postgres_lists_a_customers_complaints(feedback: Feedback) -> None:
    transport = httpx.ASGITransport(app=build_api(feedback.container))
    async with httpx.AsyncClient(transport=transport, base_url="http://feedback", headers=AUTH) as client:
        for n in range(5):
            body = {
                "customer_id": "c-1",
                "category": "price",
                "severity": "medium",
                "summary": "x",
                "complaint_id": f"k-{n}",
            }
            assert (await client.post("/complaints", json=body)).status_code == 201
            feedback.clock.advance(minutes=1)
        ack = await client.post("/complaints/k-3/acknowledgement", json={}, headers={"If-Match": '"1"'})
        assert ack.status_code == 200
        assert (
            await client.post("/complaints/k-3/acknowledgement", json={}, headers={"If-Match": '"1"'})
        ).status_code == 409
        page = (await client.get("/customers/c-1/complaints", params={"limit": 2, "offset": 1})).json()
        assert (page["total"], [c["complaint_id"] for c in page["items"]]) == (5, ["k-3", "k-2"])
        acknowledged = (await client.get("/customers/c-1/complaints", params={"status": "acknowledged"})).json()
        assert (acknowledged["total"], acknowledged["items"][0]["version"]) == (1, 2)
        keyed = {"customer_id": "c-2", "category": "other", "severity": "low", "summary": "retried"}
        first = await client.post("/complaints", json=keyed, headers={"Idempotency-Key": "retry-1"})
        again = await client.post("/complaints", json=keyed, headers={"Idempotency-Key": "retry-1"})
        assert (first.status_code, again.status_code, again.json()) == (201, 201, first.json())
        assert (await client.get("/customers/c-2/complaints")).json()["total"] == 1
        survey = await client.post("/surveys", json={"customer_id": "c-1", "csat": 5, "survey_id": "s-1"})
        assert survey.status_code == 201
        assert (await client.get("/surveys/s-1")).json()["csat"] == 5


async def test_an_imported_complaint_keeps_its_dates_in_the_row_the_stream_and_the_published_events(
    feedback: Feedback,
) -> None:
    filed_at = datetime(2011, 3, 1, 10, tzinfo=UTC)
    cmd = FileComplaint("c-1", "delivery", "high", "late truck", complaint_id="k-1", filed_at=filed_at)
    await feedback.handlers.file_complaint(cmd, "import")
    acknowledged_at = filed_at + timedelta(hours=6)  # 2 h past the 4 h window
    await feedback.handlers.acknowledge(AcknowledgeComplaint("k-1", "agent-7", at=acknowledged_at), "import")
    await feedback.handlers.resolve(ResolveComplaint("k-1", "refund", at=filed_at + timedelta(days=1)), "import")

    [row] = await feedback.rows("SELECT * FROM complaints")
    assert (row["filed_at"], row["acknowledge_by"], row["resolve_by"]) == (
        filed_at,
        filed_at + timedelta(hours=4),
        filed_at + timedelta(days=3),
    )
    assert (row["status"], row["escalations"], row["version"]) == ("resolved", 1, 4)
    published = [json.loads(bytes(r["value"])) for r in await feedback.rows("SELECT value FROM outbox ORDER BY id")]
    assert [(e["event_type"], e["occurred_at"]) for e in published] == [
        ("ComplaintFiled", "2026-05-04T08:00:00Z"),  # recorded now, happened in 2011
        ("ComplaintEscalated", "2026-05-04T08:00:00Z"),
        ("ComplaintAcknowledged", "2026-05-04T08:00:00Z"),
        ("ComplaintResolved", "2026-05-04T08:00:00Z"),
    ]
    assert published[1]["data"] == {
        "complaint_id": "k-1",
        "breach": "acknowledge",
        "deadline": "2011-03-01T14:00:00Z",
        "overdue_by_hours": 2,
    }
    assert (published[2]["data"]["acknowledged_at"], published[3]["data"]["resolved_at"]) == (
        "2011-03-01T16:00:00Z",
        "2011-03-02T10:00:00Z",
    )
    loaded = await feedback.complaints.get("k-1")
    assert loaded is not None and loaded.last_step == ("resolution", filed_at + timedelta(days=1))


async def test_python_m_feedback_sweep_runs_its_clock_from_feedback_clock_start(
    feedback: Feedback, namespace: str
) -> None:
    filed_at = datetime(2011, 3, 1, 10, tzinfo=UTC)  # critical: acknowledge by 12:00, resolve by 03-02 10:00
    cmd = FileComplaint("c-1", "price", "critical", "wrong price", complaint_id="k-1", filed_at=filed_at)
    await feedback.handlers.file_complaint(cmd, "import")
    returncode, output = await sweep_until_escalated(
        feedback, namespace, FEEDBACK_CLOCK_START="2011-03-01T13:00:00+00:00"
    )
    # on the real clock both deadlines would have passed 15 years ago; on the sweep's only the first
    assert await feedback.escalations() == {"k-1": ["acknowledge"]}, output
    [escalation] = await feedback.rows("SELECT data FROM events WHERE event_type = 'ComplaintEscalated'")
    assert escalation["data"]["overdue_by_hours"] == 1, output
    assert returncode == 0, output


async def test_python_m_feedback_sweep_escalates_on_its_own(feedback: Feedback, namespace: str) -> None:
    feedback.clock.now = datetime.now(UTC) - timedelta(hours=3)  # critical: 2 h to acknowledge
    await file(feedback, "k-1", severity="critical")
    returncode, output = await sweep_until_escalated(feedback, namespace)
    assert await feedback.escalations() == {"k-1": ["acknowledge"]}, output
    assert returncode == 0, output


async def sweep_until_escalated(feedback: Feedback, namespace: str, **settings: str) -> tuple[int | None, str]:
    """Run ``python -m feedback sweep`` (every 0.2 s, ``settings`` added to its environment) until it has
    escalated something or 90 s passed, stop it with SIGTERM; its exit code and output."""
    env = {
        **os.environ,
        "FEEDBACK_DATABASE_URL": feedback.url,
        "FEEDBACK_SWEEP_INTERVAL_S": "0.2",
        "TIERSTREAM_TOPIC_NAMESPACE": namespace,
        "LOG_FORMAT": "json",
        **settings,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "feedback",
        "sweep",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        for _ in range(450):  # up to 90 s: a cold interpreter start can be slow on a busy box
            if await feedback.escalations():
                break
            await asyncio.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(process.communicate(), timeout=20))[0].decode()
    return process.returncode, output
