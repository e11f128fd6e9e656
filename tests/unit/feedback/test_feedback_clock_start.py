"""FEEDBACK_CLOCK_START: the business clock (commands given no date, the SLA sweep) for demos of historical data
(never in production)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from feedback_fakes import FakeClock
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from feedback.application.handlers import FileComplaint
from feedback.bootstrap import wire_in_memory
from feedback.config import FeedbackSettings
from shared.db.engine import create_engine
from shared.events.topics import Topics
from shared.runtime import Container

pytestmark = pytest.mark.unit

HISTORY_ENDS = datetime(2011, 12, 10, tzinfo=UTC)


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    built = create_engine("postgresql://nobody:nothing@127.0.0.1:9/none")  # never connected to
    yield built
    await built.dispose()


def container_for(settings: FeedbackSettings, engine: AsyncEngine) -> Container[FeedbackSettings]:
    return Container(settings=settings, engine=engine, topics=Topics("t."))


async def test_the_business_clock_starts_at_the_configured_instant_and_events_keep_the_real_recording_time(
    engine: AsyncEngine,
) -> None:
    container = container_for(FeedbackSettings(clock_start=HISTORY_ENDS, TIERSTREAM_ENV="test"), engine)
    store = wire_in_memory(container)

    swept_at = container.parts["sweep"].clock()
    filed = await container.parts["handlers"].file_complaint(FileComplaint("c-1", "price", "low", "x"), "t")

    assert HISTORY_ENDS <= swept_at < HISTORY_ENDS + timedelta(days=1)
    # a complaint filed "now" during the demo lives on the data's timeline (due, breached, counted there)
    assert filed.filed_at is not None and HISTORY_ENDS <= filed.filed_at < HISTORY_ENDS + timedelta(days=1)
    assert store.streams["complaint-" + filed.id][0].occurred_at.year > 2020  # recorded at the real time


async def test_the_sweep_escalates_what_was_overdue_on_the_configured_day(engine: AsyncEngine) -> None:
    container = container_for(FeedbackSettings(clock_start=HISTORY_ENDS, TIERSTREAM_ENV="test"), engine)
    wire_in_memory(container)
    handlers = container.parts["handlers"]
    for complaint_id, filed_at in (("old", HISTORY_ENDS - timedelta(days=30)), ("fresh", HISTORY_ENDS)):
        cmd = FileComplaint("c-1", "price", "low", "x", complaint_id=complaint_id, filed_at=filed_at)
        await handlers.file_complaint(cmd, "t")

    report = await container.parts["sweep"].run_once()

    assert (report.escalated_complaints, report.escalations) == (1, 2)  # "fresh": 48 h to acknowledge yet
    old = await container.parts["complaints"].get("old")
    assert (old.escalations, old.next_escalation_at) == (2, None)


async def test_without_a_clock_start_the_sweep_uses_the_real_clock(engine: AsyncEngine) -> None:
    container = container_for(FeedbackSettings(TIERSTREAM_ENV="test"), engine)
    wire_in_memory(container)

    assert container.parts["sweep"].clock().year > 2020


async def test_an_injected_clock_wins_over_the_clock_start(engine: AsyncEngine) -> None:
    container = container_for(FeedbackSettings(clock_start=HISTORY_ENDS, TIERSTREAM_ENV="test"), engine)
    fixed = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    wire_in_memory(container, clock=fixed)

    assert container.parts["sweep"].clock() == fixed.now


def test_the_clock_start_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACK_CLOCK_START", "2011-12-10T00:00:00+00:00")
    assert FeedbackSettings().clock_start == HISTORY_ENDS


def test_a_clock_start_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="FEEDBACK_CLOCK_START"):
        FeedbackSettings(
            clock_start=HISTORY_ENDS,
            database_url="postgresql://feedback:a-real-secret@db/feedback",
            TIERSTREAM_ENV="production",
            TIERSTREAM_API_TOKENS={"a-real-token-123": ["feedback:write"]},
        )
