"""Fixtures of the e2e tier: the four services as real processes (``running_stack``, one per module)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from running_stack import free_port, services_running

from tierstream import stack


@pytest.fixture(scope="module")
def running_stack(
    kafka_bootstrap: str, pg_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[stack.StackConfig]:
    """All four services on free ports, their own topics (namespace) and databases (prefix)."""
    tag = uuid.uuid4().hex[:8]
    config = stack.StackConfig(
        ports={s: free_port() for s in stack.SERVICES},
        namespace=f"e2e{tag}.",
        database_prefix=f"e2e_{tag}_",
        state_dir=Path(tmp_path_factory.mktemp("stack")),
    )
    with services_running(config, stack.Infra(bootstrap_servers=kafka_bootstrap, pg_url=pg_server)):
        yield config
