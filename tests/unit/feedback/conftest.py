"""Fixtures of the feedback unit tests: the service wired over in-memory fakes with a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from feedback_fakes import FakeClock, Service, in_memory_service


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def service(clock: FakeClock) -> AsyncIterator[Service]:
    built = in_memory_service(clock)
    yield built
    await built.container.engine.dispose()
