"""aiokafka's repeated lines (every retry while a broker is away) are rate-limited: the first occurrence of
a message passes, its repeats within the window are counted and summarised once, another message is
limited on its own, and a window later the message passes again. Tierstream's own lines are never held."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from shared.logging import RepeatedLibraryLines, Repeats

pytestmark = pytest.mark.unit

CONNECT_FAILED = "Unable connect to node with id %s: %s"
FETCH_FAILED = "Failed fetch messages from %s: %s"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(
    msg: str = CONNECT_FAILED, *args: object, name: str = "aiokafka.client", level: int = logging.ERROR
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args or (1, "Connect call failed"), None)


class Limiter:
    """The filter with a clock of its own and its summaries collected instead of logged."""

    def __init__(self, window_s: float = 30.0) -> None:
        self.clock = Clock()
        self.summaries: list[Repeats] = []
        self.filter = RepeatedLibraryLines(window_s=window_s, clock=self.clock, summarise=self.summaries.append)

    def passed(self, *records: logging.LogRecord, every_s: float = 0.1) -> list[logging.LogRecord]:
        kept = []
        for r in records:
            if self.filter.filter(r):
                kept.append(r)
            self.clock.now += every_s
        return kept


def test_the_first_occurrence_passes_and_its_repeats_within_the_window_do_not() -> None:
    limiter = Limiter(window_s=30)
    first, *repeats = [record(CONNECT_FAILED, 1, f"attempt {n}") for n in range(200)]  # 20 s of retries

    assert limiter.passed(first, *repeats) == [first]
    assert limiter.summaries == []  # the window is still open


def test_a_window_s_repeats_are_summarised_once_with_their_count_when_it_ends() -> None:
    limiter = Limiter(window_s=30)
    limiter.passed(*(record(CONNECT_FAILED, 1, f"attempt {n}") for n in range(300)))  # 0 … 29.9 s
    assert limiter.summaries == []

    limiter.clock.now += 0.1  # the window is over: the next record of any logger closes it
    limiter.passed(record("consumer.batch_applied", name="shared.messaging.consumer", level=logging.INFO))

    assert limiter.summaries == [
        Repeats(
            logger="aiokafka.client",
            level=logging.ERROR,
            template=CONNECT_FAILED,
            count=299,
            window_s=30,
            last_message="Unable connect to node with id 1: attempt 299",
        )
    ]
    limiter.passed(record("consumer.batch_applied", name="shared.messaging.consumer", level=logging.INFO))
    assert len(limiter.summaries) == 1  # once per window


def test_a_window_later_the_message_passes_again_and_opens_a_new_window() -> None:
    limiter = Limiter(window_s=30)
    limiter.passed(record(), record(), record())
    limiter.clock.now += 30

    again = record(CONNECT_FAILED, 2, "still refused")
    assert limiter.passed(again, record(), record()) == [again]
    assert [s.count for s in limiter.summaries] == [2]  # the first window's, logged before ``again``


def test_a_message_that_did_not_repeat_leaves_no_summary() -> None:
    limiter = Limiter(window_s=30)
    limiter.passed(record())
    limiter.clock.now += 60

    limiter.passed(record(FETCH_FAILED, name="aiokafka.consumer.fetcher"))
    assert limiter.summaries == []


def test_different_templates_and_loggers_are_limited_independently() -> None:
    limiter = Limiter(window_s=30)
    connect = record(CONNECT_FAILED, 1, "refused")
    fetch = record(FETCH_FAILED, 1, "NodeNotReadyError", name="aiokafka.consumer.fetcher")
    same_text_other_logger = record(CONNECT_FAILED, 1, "refused", name="aiokafka.conn")

    fetch_again = record(FETCH_FAILED, 1, "x", name="aiokafka.consumer.fetcher")

    kept = limiter.passed(connect, fetch, same_text_other_logger, record(), fetch_again)

    assert kept == [connect, fetch, same_text_other_logger]


def test_tierstream_lines_are_never_held() -> None:
    limiter = Limiter(window_s=30)
    ours = [record("relay.retry", name="shared.messaging.relay", level=logging.WARNING) for _ in range(50)]

    assert limiter.passed(*ours) == ours


def test_configured_logging_logs_a_flood_of_aiokafka_retries_as_one_line_and_one_summary(
    captured_logging: Callable[[], list[dict[str, Any]]],
) -> None:
    (limiter,) = [f for f in logging.getLogger().handlers[0].filters if isinstance(f, RepeatedLibraryLines)]
    clock = limiter.clock = Clock()
    client = logging.getLogger("aiokafka.client")

    for attempt in range(400):  # 40 s of retries, every 100 ms
        client.error(CONNECT_FAILED, 1, f"[Errno 111] attempt {attempt}")
        clock.now += 0.1

    logged = captured_logging()
    assert [(line["logger"], line["level"]) for line in logged] == [("aiokafka.client", "error")] * 3
    first, summary, second_window = logged
    assert first["event"] == "Unable connect to node with id 1: [Errno 111] attempt 0"
    assert summary["event"] == "Unable connect to node with id 1: [Errno 111] attempt 299 (repeated 299 times in 30 s)"
    assert (summary["repeated"], summary["window_s"], summary["template"]) == (299, 30.0, CONNECT_FAILED)
    assert summary["service"] == "test"
    assert second_window["event"] == "Unable connect to node with id 1: [Errno 111] attempt 300"
