"""Fixtures of the unit tier."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from shared.logging import configure_logging


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
