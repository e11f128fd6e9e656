"""Structured logging: JSON lines (or a console renderer in development) with bound context.

Request and message handlers bind ``correlation_id`` (and friends) with
``structlog.contextvars.bound_contextvars`` so every line they log carries it.

Libraries log at WARNING and above only; aiokafka's coordinator look-up retries while a group's
coordinator is being set up are demoted (:class:`CoordinatorLookupRetries`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

import structlog
from aiokafka.errors import GroupCoordinatorNotAvailableError


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared_processors,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _add_service(service),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access", "sqlalchemy.engine", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    coordinator = logging.getLogger(CoordinatorLookupRetries.LOGGER)
    if not any(isinstance(f, CoordinatorLookupRetries) for f in coordinator.filters):
        coordinator.addFilter(CoordinatorLookupRetries())


class CoordinatorLookupRetries(logging.Filter):
    """Demotes aiokafka's ``Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError``
    from ERROR to INFO while it is the normal, short-lived start-up state; keeps it at ERROR once it lasts.

    aiokafka (``GroupCoordinator.ensure_coordinator_known``) logs it at ERROR each time a FindCoordinator
    request is answered COORDINATOR_NOT_AVAILABLE — which a broker answers while the offsets topic is
    being created or loaded (a fresh broker, the first group) or the coordinator moves — and retries by
    itself every ``retry_backoff_ms`` (the error is retriable; aiokafka's own join, sync and commit paths
    log the same error at DEBUG / INFO). A streak of them (none more than ``quiet_s`` apart) is demoted
    for its first ``grace_s``; after that each passes at ERROR: a coordinator still unavailable then is
    a broker problem (e.g. ``offsets.topic.replication.factor`` above the live brokers). A demoted record
    is emitted only if its logger is enabled for INFO (aiokafka's loggers are at WARNING: it is dropped).
    Every other record passes unchanged."""

    LOGGER = "aiokafka.consumer.group_coordinator"
    MESSAGE = "Group Coordinator Request failed: %s"

    def __init__(
        self, grace_s: float = 30.0, quiet_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.grace_s = grace_s
        self.quiet_s = quiet_s
        self.clock = clock
        self._streak_started = 0.0
        self._last_seen: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if not (
            record.msg == self.MESSAGE
            and isinstance(record.args, tuple)
            and len(record.args) == 1
            and isinstance(record.args[0], GroupCoordinatorNotAvailableError)
        ):
            return True
        now = self.clock()
        if self._last_seen is None or now - self._last_seen > self.quiet_s:
            self._streak_started = now
        self._last_seen = now
        if now - self._streak_started > self.grace_s:
            return True
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def _add_service(service: str) -> structlog.types.Processor:
    def add(_logger: object, _name: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
