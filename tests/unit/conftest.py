"""Fixtures of the unit tier."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

import shared.messaging.consumer as consumer_module
from shared.logging import configure_logging
from shared.messaging.consumer import ProjectionConsumer


@pytest.fixture
def captured_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The project's logging (``configure_logging``, JSON) writing to a buffer; yields a function that
    returns the lines logged so far, parsed. The process's logging is set back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in ("aiokafka", "uvicorn.access", "sqlalchemy.engine")}
    structlog_config = structlog.get_config()
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("test", "INFO", "json")
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in libraries.items():
        logging.getLogger(name).setLevel(saved)
    structlog.configure(**structlog_config)


@pytest.fixture
def offline_consumer(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ProjectionConsumer]:
    """Makes a ProjectionConsumer whose engine and projection are never reached, on ``kafka_client`` in place
    of aiokafka's consumer (default: an object nothing calls); keyword options go to ProjectionConsumer."""

    def make(kafka_client: object | None = None, **options: Any) -> ProjectionConsumer:
        client = object() if kafka_client is None else kafka_client
        monkeypatch.setattr(consumer_module, "AIOKafkaConsumer", lambda **_: client)
        settings: dict[str, Any] = {"topics": ["t.customers"], "deadletter_topic": "t.deadletter", **options}
        return ProjectionConsumer(
            object(),  # type: ignore[arg-type]
            object(),  # type: ignore[arg-type]
            bootstrap_servers="127.0.0.1:1",
            group_id="g",
            **settings,
        )

    return make
