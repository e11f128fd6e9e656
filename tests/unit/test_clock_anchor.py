"""``<SERVICE>_CLOCK_ANCHOR``: the real instant at which a simulated clock read ``<SERVICE>_CLOCK_START``, so
every service of a demo shares one timeline and a restarted one continues on it instead of rewinding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from feedback.bootstrap import _business_clock
from feedback.config import FeedbackSettings
from orders.bootstrap import wire as wire_orders
from orders.config import OrdersSettings
from segmentation.bootstrap import wire as wire_segmentation
from segmentation.config import SegmentationSettings
from shared.clock import running_from
from shared.db.engine import create_engine
from shared.events.topics import Topics
from shared.runtime import Container
from shared.settings import SimulatedClockSettings

pytestmark = pytest.mark.unit

START = datetime(2011, 12, 10, tzinfo=UTC)
SETTINGS = [(OrdersSettings, "ORDERS"), (FeedbackSettings, "FEEDBACK"), (SegmentationSettings, "SEGMENTATION")]
#: the margin a test allows for the time it takes to run
SLACK = timedelta(seconds=30)


def test_an_anchored_clock_reads_the_start_plus_the_real_time_elapsed_since_the_anchor() -> None:
    demo_started = datetime.now(UTC) - timedelta(hours=3)
    restarted = running_from(START, demo_started)()
    assert START + timedelta(hours=3) <= restarted < START + timedelta(hours=3) + SLACK


class FakeRealTime:
    """The real clocks :mod:`shared.clock` reads — wall (``datetime.now``) and ``time.monotonic`` — moved by hand."""

    def __init__(self, wall: datetime) -> None:
        self.wall = wall
        self.elapsed = 0.0

    def advance(self, delta: timedelta) -> None:
        self.wall += delta
        self.elapsed += delta.total_seconds()

    def now(self, tz: object = None) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.elapsed


@pytest.fixture
def real(monkeypatch: pytest.MonkeyPatch) -> FakeRealTime:
    fake = FakeRealTime(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    monkeypatch.setattr("shared.clock.datetime", fake)
    monkeypatch.setattr("shared.clock.time", fake)
    return fake


def test_a_process_restarted_with_the_same_anchor_continues_on_the_timeline_of_the_others(
    real: FakeRealTime,
) -> None:
    anchor = real.wall  # the demo starts the clocks
    running = running_from(START, anchor)
    real.advance(timedelta(hours=2))  # another service is killed after 2 h and started again
    restarted = running_from(START, anchor)
    assert running() == restarted() == START + timedelta(hours=2)
    real.advance(timedelta(minutes=10))
    assert running() == restarted() == START + timedelta(hours=2, minutes=10)


def test_without_an_anchor_the_clock_reads_its_start_when_it_is_made(real: FakeRealTime) -> None:
    real.advance(timedelta(hours=2))
    clock = running_from(START)
    assert clock() == START
    real.advance(timedelta(minutes=1))
    assert clock() == START + timedelta(minutes=1)


@pytest.mark.parametrize(("settings", "prefix"), SETTINGS)
def test_the_anchor_is_read_from_the_services_variable(
    settings: type[SimulatedClockSettings], prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"{prefix}_CLOCK_START", START.isoformat())
    monkeypatch.setenv(f"{prefix}_CLOCK_ANCHOR", "2026-01-02T03:04:05+00:00")
    assert settings().clock_anchor == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(("settings", "prefix"), SETTINGS)
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"clock_anchor": "2026-01-02T03:04:05+00:00"}, "{p}_CLOCK_ANCHOR is set but {p}_CLOCK_START is not"),
        ({"clock_start": START, "clock_anchor": "last tuesday"}, "{p}_CLOCK_ANCHOR 'last tuesday' is not an instant"),
        (
            {"clock_start": START, "clock_anchor": "2026-01-02T03:04:05"},
            "{p}_CLOCK_ANCHOR '2026-01-02T03:04:05' is not an instant with its UTC offset",
        ),
        (
            {"clock_start": START, "clock_anchor": "2999-01-01T00:00:00Z"},
            "{p}_CLOCK_ANCHOR 2999-01-01T00:00:00Z is in the future",
        ),
    ],
)
def test_a_wrong_anchor_stops_the_service_with_a_message_naming_the_variable(
    settings: type[SimulatedClockSettings], prefix: str, values: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.format(p=prefix)):
        settings(**values, TIERSTREAM_ENV="development")


@pytest.mark.parametrize(("settings", "prefix"), SETTINGS)
def test_an_anchor_is_refused_in_production_naming_the_services_variable(
    settings: type[SimulatedClockSettings], prefix: str
) -> None:
    with pytest.raises(ValidationError, match=f"{prefix}_CLOCK_ANCHOR is for demos and tests; refused in production"):
        settings(
            clock_anchor=datetime(2026, 1, 1, tzinfo=UTC),
            database_url=f"postgresql://{prefix.lower()}:a-real-secret@db/{prefix.lower()}",
            TIERSTREAM_ENV="production",
            TIERSTREAM_API_TOKENS={"a-real-token-123": ["orders:write"]},
        )


def _container(settings: SimulatedClockSettings) -> Container[Any]:
    # never connected to: wiring builds adapters without touching the database
    engine = create_engine("postgresql://nobody:nothing@127.0.0.1:9/none")
    return Container(settings=settings, engine=engine, topics=Topics("t."))


def test_each_clocked_service_runs_its_business_clock_from_the_anchor() -> None:
    demo_started = datetime.now(UTC) - timedelta(hours=5)
    anchored = {"clock_start": START, "clock_anchor": demo_started, "TIERSTREAM_ENV": "test"}
    segmentation = _container(SegmentationSettings(**anchored))
    orders = _container(OrdersSettings(**anchored))
    wire_segmentation(segmentation)
    wire_orders(orders)
    feedback = _business_clock(_container(FeedbackSettings(**anchored)), None)
    for now in (segmentation.parts["clock"](), orders.parts["overdue_sweep"].clock(), feedback()):
        assert START + timedelta(hours=5) <= now < START + timedelta(hours=5) + SLACK
