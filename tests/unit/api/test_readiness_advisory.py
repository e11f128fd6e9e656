"""An API is ready when what serving needs answers; Kafka is reported, not required.

Before, every API answered 503 on /health/ready while Kafka was away, although its commands were being
accepted (they wait in the outbox): a load balancer routing by readiness would have taken every write API
out of service during a Kafka outage, which is what the outbox is there to survive."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from shared.api import CachedCheck, create_app
from shared.settings import ApiSettings

pytestmark = pytest.mark.unit


def check(answer: bool) -> Any:
    async def probe() -> bool:
        return answer

    return probe


async def ready(database: bool, kafka: bool) -> httpx.Response:
    app = create_app(
        service="notes",
        title="t",
        description="d",
        routers=[APIRouter()],
        ready_checks={"database": check(database)},
        advisory_checks={"kafka": check(kafka)},
        settings=ApiSettings(),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notes") as client:
        return await client.get("/health/ready")


async def test_kafka_away_is_reported_but_the_api_stays_ready() -> None:
    response = await ready(database=True, kafka=False)

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": True, "kafka": False},
        "advisory": ["kafka"],
        "service": "notes",
    }


async def test_the_database_away_makes_the_api_unready_whatever_kafka_says() -> None:
    response = await ready(database=False, kafka=True)

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"] == {"database": False, "kafka": True}


class Probe:
    """A probe the test answers by hand: each call waits until the test releases it with an answer."""

    def __init__(self) -> None:
        self.calls = 0
        self.answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def __call__(self) -> bool:
        self.calls += 1
        return await self.answer

    def release(self, answer: bool) -> None:
        self.answer.set_result(answer)
        self.answer = asyncio.get_running_loop().create_future()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_cached_check_never_waits_for_a_probe_that_hangs() -> None:
    """Kafka frozen (SIGSTOP): each probe took its whole 3 s timeout, and /health/ready with it."""
    now = [0.0]
    probe = Probe()
    check = CachedCheck(probe, max_age_s=5.0, first_wait_s=0.0, clock=lambda: now[0])

    assert await check() is False  # nothing known yet, and the first probe still hangs
    probe.release(True)
    await settle()
    assert await check() is True  # the probe's answer, from the cache
    assert probe.calls == 1

    now[0] = 6.0  # stale: one refresh starts in the background, the answer does not wait for it
    assert await check() is True
    assert await check() is True
    await settle()
    assert probe.calls == 2  # one refresh at a time
    probe.release(False)
    await settle()
    assert await check() is False  # the refresh's answer once it came


async def test_a_probe_that_raises_counts_as_not_answering() -> None:
    async def broken() -> bool:
        raise OSError("no route to host")

    check = CachedCheck(broken, first_wait_s=1.0)
    assert await check() is False
