"""Structured logging: JSON lines (or a console renderer in development) with bound context.

Request and message handlers bind ``correlation_id`` (and friends) with
``structlog.contextvars.bound_contextvars`` so every line they log carries it.

Libraries log at WARNING and above only; aiokafka's coordinator look-up retries while a group's
coordinator is being set up are demoted (:class:`CoordinatorLookupRetries`), and aiokafka's repeats of
one message (every retry while a broker is away) are summarised once per window
(:class:`RepeatedLibraryLines`). That Kafka is unreachable, Tierstream says itself
(:mod:`shared.messaging.reachability`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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
    handler.addFilter(RepeatedLibraryLines())
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


@dataclass(frozen=True)
class Repeats:
    """A library message suppressed ``count`` times in the window its first occurrence opened."""

    logger: str
    level: int
    template: str
    count: int
    window_s: float
    #: the last suppressed occurrence, formatted (its node id, offsets... as they were then)
    last_message: str


def log_repeats(repeats: Repeats) -> None:
    """The summary line of a window: at the level and under the logger of the suppressed lines."""
    structlog.stdlib.get_logger(repeats.logger).log(
        repeats.level,
        f"{repeats.last_message} (repeated {repeats.count} times in {repeats.window_s:g} s)",
        repeated=repeats.count,
        window_s=repeats.window_s,
        template=repeats.template,
    )


@dataclass
class _Window:
    opened_at: float
    level: int
    suppressed: int = 0
    last: logging.LogRecord | None = None


class RepeatedLibraryLines(logging.Filter):
    """Rate-limits a library's repeated lines (a handler filter: it sees every logger's records).

    aiokafka logs every failed retry — connect, metadata, fetch, coordinator look-up, each ~10 times a
    second while a broker is away. A message is keyed by logger and template (``record.msg``, not the
    formatted text, whose node ids and offsets change): its first occurrence passes and opens a window
    of ``window_s``; the repeats within it are counted, not logged. Once the window is over, its count
    is logged once (:func:`log_repeats`: "… (repeated 312 times in 30 s)") and the next occurrence passes
    again, opening a new window. Windows are closed on the next record any logger sends through the
    handler — during an outage that is within a retry of the window's end; a window nothing followed is
    summarised with the process's next line. Other loggers' records pass unchanged."""

    def __init__(
        self,
        window_s: float = 30.0,
        loggers: tuple[str, ...] = ("aiokafka",),
        clock: Callable[[], float] = time.monotonic,
        summarise: Callable[[Repeats], None] = log_repeats,
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.loggers = loggers
        self.clock = clock
        self.summarise = summarise
        self._windows: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()
        self._summarising = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(self._summarising, "active", False):
            return True  # a summary this filter is logging
        now = self.clock()
        self._summarise(self._close_windows(now))
        if not any(record.name == name or record.name.startswith(name + ".") for name in self.loggers):
            return True
        with self._lock:
            window = self._windows.get((record.name, str(record.msg)))
            if window is None:
                self._windows[(record.name, str(record.msg))] = _Window(opened_at=now, level=record.levelno)
                return True
            window.suppressed += 1
            window.last = record
            return False

    def _close_windows(self, now: float) -> list[Repeats]:
        with self._lock:
            ended = [key for key, w in self._windows.items() if now - w.opened_at >= self.window_s]
            closed = [(key, self._windows.pop(key)) for key in ended]
        return [
            Repeats(name, w.level, template, w.suppressed, self.window_s, w.last.getMessage())
            for (name, template), w in closed
            if w.last is not None
        ]

    def _summarise(self, due: list[Repeats]) -> None:
        if not due:
            return
        self._summarising.active = True
        try:
            for repeats in due:
                self.summarise(repeats)
        finally:
            self._summarising.active = False


def _add_service(service: str) -> structlog.types.Processor:
    def add(_logger: object, _name: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
