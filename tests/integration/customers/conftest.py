"""A customers service wired to a fresh database of its own, driven in-process over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from customers.__main__ import DEFINITION
from customers.application.handlers import CustomerHandlers
from customers.config import CustomersSettings
from customers.entrypoints.api import build_api
from shared.runtime import Container

#: Development token (docs/api.md); harmless where auth is not enforced.
AUTH = {"Authorization": "Bearer dev-admin"}


@pytest.fixture
async def customers(
    database_factory: Callable[[str], Awaitable[str]], namespace: str, kafka_bootstrap: str
) -> AsyncIterator[Container[CustomersSettings]]:
    settings = CustomersSettings(
        database_url=await database_factory("customers"),
        TIERSTREAM_TOPIC_NAMESPACE=namespace,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        TIERSTREAM_ENV="test",
    )
    container = DEFINITION.container(settings)
    yield container
    await container.close()


@pytest.fixture
def handlers(customers: Container[CustomersSettings]) -> CustomerHandlers:
    return customers.parts["handlers"]


@pytest.fixture
async def api(customers: Container[CustomersSettings]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(customers))
    async with httpx.AsyncClient(transport=transport, base_url="http://customers", headers=AUTH) as client:
        yield client
