"""A hung dependency (a PostgreSQL or Kafka that holds its connections and answers nothing) neither hangs a
readiness probe nor keeps a process from stopping within a container's 30 s stop grace.

The waits below are guards against hanging, not speed checks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

import shared.messaging.consumer as consumer_module
from shared.api import DatabaseCheck
from shared.events.topics import Topics
from shared.messaging.consumer import ProjectionConsumer
from shared.runtime import Container
from shared.serving import serve_http
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit


async def forever() -> None:
    await asyncio.Event().wait()


class HungEngine:
    """An engine whose server never answers: connecting and disposing wait for ever."""

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Any]:
        await forever()
        yield None  # pragma: no cover

    async def dispose(self) -> None:
        await forever()


async def test_the_database_readiness_check_is_not_ready_when_the_server_does_not_answer() -> None:
    check = DatabaseCheck(HungEngine(), timeout_s=0.1)  # type: ignore[arg-type]
    assert await asyncio.wait_for(check(), 5) is False


async def test_closing_a_container_leaves_a_database_that_does_not_answer() -> None:
    container = Container(ServiceSettings(), HungEngine(), Topics(""))  # type: ignore[arg-type]
    await asyncio.wait_for(container.close(timeout_s=0.1), 5)


async def test_a_stopping_consumer_does_not_wait_for_a_broker_that_does_not_answer(
    offline_consumer: Callable[..., ProjectionConsumer], monkeypatch: pytest.MonkeyPatch
) -> None:
    class HungKafkaConsumer:
        async def stop(self) -> None:  # LeaveGroup to a frozen broker
            await forever()

    monkeypatch.setattr(consumer_module, "STOP_TIMEOUT_S", 0.1)
    consumer = offline_consumer(HungKafkaConsumer())
    await asyncio.wait_for(consumer._stop_client(), 5)


async def test_a_stopping_server_cancels_requests_stuck_on_a_dependency_after_its_grace() -> None:
    router = APIRouter()
    entered = asyncio.Event()

    @router.get("/stuck")
    async def stuck() -> None:
        entered.set()
        await forever()  # e.g. a statement on a hung PostgreSQL

    app = FastAPI()
    app.include_router(router)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_http(app, sock, stop, graceful_shutdown_s=1))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        request = asyncio.create_task(client.get("/stuck"))
        await asyncio.wait_for(entered.wait(), 10)
        stop.set()
        await asyncio.wait_for(serving, 10)  # before: it waited for the request for ever
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await request
