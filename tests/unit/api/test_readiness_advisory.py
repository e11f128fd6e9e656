"""An API is ready when what serving needs answers; Kafka is reported, not required.

Before, every API answered 503 on /health/ready while Kafka was away, although its commands were being
accepted (they wait in the outbox): a load balancer routing by readiness would have taken every write API
out of service during a Kafka outage, which is what the outbox is there to survive."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from shared.api import create_app
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
