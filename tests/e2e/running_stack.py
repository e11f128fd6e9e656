"""The e2e tests' services: real processes started by the project's own stack code on free ports.

A module of its own, not conftest.py: tests import these names (``from running_stack import …``)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Sequence

from tierstream import stack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def services_running(
    config: stack.StackConfig, infra: stack.Infra, services: Sequence[str] = stack.SERVICES
) -> Iterator[stack.StackConfig]:
    """``services`` started and ready; stopped afterwards, with the tail of each log printed (shown by
    pytest when a test failed)."""
    try:
        for service in services:
            stack.start_service(config, infra, service)
        for service in services:
            stack.wait_ready(config, service)
        yield config
    finally:
        for service in services:
            stack.stop_service(config, service)
        for log in sorted(config.log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n" + "\n".join(log.read_text().splitlines()[-15:]))
