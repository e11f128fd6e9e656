"""``<SERVICE>_CLOCK_START`` (shared.settings.SimulatedClockSettings): accepted in development, refused in
production with a message naming the service's own variable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from feedback.config import FeedbackSettings
from orders.config import OrdersSettings
from segmentation.config import SegmentationSettings
from shared.settings import SimulatedClockSettings

pytestmark = pytest.mark.unit

START = datetime(2011, 12, 10, tzinfo=UTC)
SETTINGS = [(OrdersSettings, "ORDERS"), (FeedbackSettings, "FEEDBACK"), (SegmentationSettings, "SEGMENTATION")]


@pytest.mark.parametrize(("settings", "prefix"), SETTINGS)
def test_a_clock_start_is_refused_in_production_naming_the_services_variable(
    settings: type[SimulatedClockSettings], prefix: str
) -> None:
    with pytest.raises(ValidationError, match=f"{prefix}_CLOCK_START is for demos and tests; refused in production"):
        settings(
            clock_start=START,
            database_url=f"postgresql://{prefix.lower()}:a-real-secret@db/{prefix.lower()}",
            TIERSTREAM_ENV="production",
            TIERSTREAM_API_TOKENS={"a-real-token-123": ["orders:write"]},
        )


@pytest.mark.parametrize(("settings", "prefix"), SETTINGS)
def test_a_clock_start_is_read_from_the_services_variable_in_development(
    settings: type[SimulatedClockSettings], prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"{prefix}_CLOCK_START", START.isoformat())
    assert settings().clock_start == START
