"""The outbox backlog gauge follows the backlog while Kafka is down — when it grows."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from shared.messaging.relay import OutboxRelay

pytestmark = pytest.mark.unit


async def test_the_backlog_gauge_is_refreshed_while_every_publish_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    relay = OutboxRelay(object(), object(), service="relay-backlog-test", backlog_every_s=0.0)  # type: ignore[arg-type]
    backlog = iter(range(1, 1000))
    stop = asyncio.Event()

    async def publish_batch() -> int:
        raise ConnectionRefusedError("the broker is down")

    async def count() -> int:
        value = next(backlog)
        if value == 3:
            stop.set()
        return value

    monkeypatch.setattr(relay, "publish_batch", publish_batch)
    monkeypatch.setattr(relay, "backlog", count)
    monkeypatch.setattr("shared.messaging.relay._sleep_until", lambda stop, seconds: asyncio.sleep(0))
    await asyncio.wait_for(relay.run(stop), 5)  # a guard against a loop, not a speed check
    assert REGISTRY.get_sample_value("tierstream_outbox_backlog", {"service": "relay-backlog-test"}) == 3
