"""The consumer's Kafka session timeout is a validated per-service setting that reaches the consumer."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from segmentation.config import SegmentationSettings
from shared import runtime
from shared.events.topics import Topics
from shared.runtime import ConsumerSpec, Container


def test_the_session_timeout_is_read_from_the_service_prefixed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENTATION_CONSUMER_SESSION_TIMEOUT_MS", "3000")
    assert SegmentationSettings().consumer_session_timeout_ms == 3000


def test_the_session_timeout_defaults_to_ten_seconds() -> None:
    assert SegmentationSettings().consumer_session_timeout_ms == 10_000


@pytest.mark.parametrize("value", ["999", "300001", "soon"])
def test_a_session_timeout_out_of_bounds_is_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SEGMENTATION_CONSUMER_SESSION_TIMEOUT_MS", value)
    with pytest.raises(ValidationError, match="consumer_session_timeout_ms"):
        SegmentationSettings()


class RecordingConsumer:
    """Stands in for ProjectionConsumer: remembers how it was built, runs until told to stop."""

    built: ClassVar[dict[str, Any]] = {}

    def __init__(self, engine: object, projection: object, **options: Any) -> None:
        RecordingConsumer.built = options

    async def run(self, stop: asyncio.Event) -> None:
        return None


async def test_the_consume_role_builds_its_consumer_with_the_configured_session_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "ProjectionConsumer", RecordingConsumer)
    settings = SegmentationSettings(consumer_session_timeout_ms=2500, TIERSTREAM_TOPIC_NAMESPACE="t1.")
    container = Container(settings=settings, engine=None, topics=Topics(settings.topic_namespace))
    spec = ConsumerSpec(group_id="g", topics=["crm.orders.v1"], build_projection=lambda _c: object())
    await runtime.run_consumer(container, spec, asyncio.Event())
    assert RecordingConsumer.built["session_timeout_ms"] == 2500
    assert RecordingConsumer.built["group_id"] == "t1.g"
