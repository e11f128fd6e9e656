"""``pace_metadata_refreshes``: aiokafka's sender asks for metadata again the moment a refresh ends while a
partition has no known leader; the producers' clients start one at most every ``min_interval_s``."""

from __future__ import annotations

import asyncio

import pytest

from shared.messaging.kafka import make_producer, pace_metadata_refreshes

pytestmark = pytest.mark.unit


class FakeClient:
    """aiokafka's client as the pacing sees it: each refresh a future, resolved ``refresh_s`` later (never
    with ``hang``, as after the client's ``close`` interrupted it)."""

    def __init__(self, *, refresh_s: float = 0.0, hang: bool = False) -> None:
        self.refresh_s, self.hang = refresh_s, hang
        self.refreshes = 0

    def force_metadata_update(self) -> asyncio.Future[bool]:
        self.refreshes += 1
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if not self.hang:
            asyncio.get_running_loop().call_later(self.refresh_s, future.set_result, True)
        return future


async def back_to_back(client: FakeClient, seconds: float) -> None:
    """Ask again the moment the last refresh ended, as the sender does."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        await client.force_metadata_update()


async def test_back_to_back_requests_start_a_refresh_at_most_every_interval() -> None:
    unpaced = FakeClient()
    await back_to_back(unpaced, 0.3)
    paced = FakeClient()
    pace_metadata_refreshes(paced, 0.05, timeout_s=1)  # type: ignore[arg-type]
    await back_to_back(paced, 0.3)
    assert unpaced.refreshes > 100  # what the sender did
    assert 1 <= paced.refreshes <= 8  # one at once, one per 0.05 s after it, one asked for just before the end


async def test_calls_while_a_refresh_is_pending_join_it() -> None:
    client = FakeClient(refresh_s=0.05)
    pace_metadata_refreshes(client, 0.05, timeout_s=1)  # type: ignore[arg-type]
    results = await asyncio.gather(*(client.force_metadata_update() for _ in range(5)))
    assert results == [True] * 5 and client.refreshes == 1


async def test_a_refresh_that_never_ends_counts_as_failed_after_the_timeout() -> None:
    client = FakeClient(hang=True)
    pace_metadata_refreshes(client, 0.01, timeout_s=0.05)  # type: ignore[arg-type]
    assert await client.force_metadata_update() is False
    assert await client.force_metadata_update() is False  # a new refresh, not the one that never ended
    assert client.refreshes == 2


async def test_the_project_producers_are_paced() -> None:
    producer = make_producer("127.0.0.1:9", client_id="pacing-test")
    assert producer.client.force_metadata_update.__qualname__.startswith("pace_metadata_refreshes")
