"""aiokafka's "Group Coordinator Request failed: GroupCoordinatorNotAvailableError" is not logged as an
ERROR while a group's coordinator is being set up (a short streak); a streak that lasts is, and every other
aiokafka error passes untouched."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog
from aiokafka.errors import GroupCoordinatorNotAvailableError, NodeNotReadyError

from shared.logging import CoordinatorLookupRetries, configure_logging

pytestmark = pytest.mark.unit

LOOKUP_FAILED = "Group Coordinator Request failed: %s"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(msg: str = LOOKUP_FAILED, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    args = args or (GroupCoordinatorNotAvailableError(),)
    return logging.LogRecord(CoordinatorLookupRetries.LOGGER, level, __file__, 1, msg, args, None)


@pytest.fixture
def coordinator_logger() -> Iterator[logging.Logger]:
    """The aiokafka coordinator logger at WARNING, as configure_logging leaves it; restored after."""
    logger = logging.getLogger(CoordinatorLookupRetries.LOGGER)
    level, filters = logger.level, list(logger.filters)
    logger.setLevel(logging.WARNING)
    yield logger
    logger.setLevel(level)
    logger.filters[:] = filters


def test_a_start_up_lookup_failure_is_demoted_to_info_and_dropped_at_the_library_level(
    coordinator_logger: logging.Logger,
) -> None:
    noise = CoordinatorLookupRetries(clock=Clock())
    first = record()

    assert noise.filter(first) is False
    assert (first.levelno, first.levelname) == (logging.INFO, "INFO")


def test_a_demoted_failure_still_shows_at_info_when_aiokafka_is_turned_up_for_diagnosis(
    coordinator_logger: logging.Logger,
) -> None:
    coordinator_logger.setLevel(logging.INFO)
    noise = CoordinatorLookupRetries(clock=Clock())
    first = record()

    assert noise.filter(first) is True
    assert first.levelname == "INFO"


def test_a_streak_that_outlasts_the_grace_period_passes_at_error(coordinator_logger: logging.Logger) -> None:
    clock = Clock()
    noise = CoordinatorLookupRetries(grace_s=30, quiet_s=5, clock=clock)
    kept = []
    for _ in range(400):  # aiokafka retries every retry_backoff_ms (100 ms): 40 s of failing look-ups
        r = record()
        if noise.filter(r):
            kept.append(r)
        clock.now += 0.1

    assert kept, "a coordinator unavailable for 40 s must be reported"
    assert all(r.levelno == logging.ERROR for r in kept)
    assert 95 <= len(kept) <= 105  # the last ~10 s of the 40


def test_a_new_streak_after_a_quiet_spell_gets_its_own_grace(coordinator_logger: logging.Logger) -> None:
    clock = Clock()
    noise = CoordinatorLookupRetries(grace_s=30, quiet_s=5, clock=clock)
    for _ in range(350):  # 35 s of failing look-ups: the last ones pass
        last = noise.filter(record())
        clock.now += 0.1
    assert last is True

    clock.now += 10  # the coordinator was found; a later move starts a new streak
    assert noise.filter(record()) is False


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        (LOOKUP_FAILED, (NodeNotReadyError(),)),  # another reason for the same failure
        ("Error sending %s to node %s [%s] -- marking coordinator dead", ("JoinGroupRequest", 1, "x")),
        ("Heartbeat session expired - marking coordinator dead", ()),
    ],
)
def test_other_aiokafka_errors_pass_unchanged(
    coordinator_logger: logging.Logger, msg: str, args: tuple[object, ...]
) -> None:
    noise = CoordinatorLookupRetries(clock=Clock())
    other = logging.LogRecord(CoordinatorLookupRetries.LOGGER, logging.ERROR, __file__, 1, msg, args, None)

    assert noise.filter(other) is True
    assert other.levelno == logging.ERROR


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    aiokafka = logging.getLogger("aiokafka")
    coordinator = logging.getLogger(CoordinatorLookupRetries.LOGGER)
    saved = (aiokafka.level, coordinator.level, list(coordinator.filters))
    structlog_config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    aiokafka.setLevel(saved[0])
    coordinator.setLevel(saved[1])
    coordinator.filters[:] = saved[2]
    structlog.configure(**structlog_config)


def test_configured_logging_drops_the_start_up_noise_and_keeps_other_aiokafka_errors(
    restored_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("test", "INFO", "json")
    configure_logging("test", "INFO", "json")  # a second configuration adds no second filter
    coordinator = logging.getLogger(CoordinatorLookupRetries.LOGGER)
    assert sum(isinstance(f, CoordinatorLookupRetries) for f in coordinator.filters) == 1

    coordinator.error(LOOKUP_FAILED, GroupCoordinatorNotAvailableError())
    coordinator.error("Heartbeat session expired - marking coordinator dead")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "Heartbeat session expired" in lines[0] and '"level": "error"' in lines[0]
