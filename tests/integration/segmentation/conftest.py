"""A segmentation service in-process on a fresh database, with a fixed clock and its API over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from engine_harness import AUTH, T0, Segmentation

from segmentation.__main__ import DEFINITION
from segmentation.bootstrap import FixedClock, wire
from segmentation.config import SegmentationSettings
from segmentation.entrypoints.api import build_api


@pytest.fixture
async def segmentation(database_factory, namespace: str) -> AsyncIterator[Segmentation]:  # type: ignore[no-untyped-def]
    settings = SegmentationSettings(
        database_url=await database_factory("segmentation"),
        topic_namespace=namespace,
        kafka_bootstrap_servers="127.0.0.1:1",  # the engine and the API need no broker
    )
    container = DEFINITION.container(settings)
    clock = FixedClock(T0)
    container.parts["clock"] = clock
    wire(container)
    transport = httpx.ASGITransport(app=build_api(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://segmentation", headers=AUTH) as http:
        yield Segmentation(container, clock, http)
    await container.close()
