"""Tierstream says itself, once per outage, that Kafka is unreachable and that it is reachable again —
with the bootstrap servers and how long — however many probes fail in between."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shared.messaging.reachability import KafkaReachability

pytestmark = pytest.mark.unit

SERVERS = "broker-a:9092,broker-b:9092"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Cluster:
    """A probe answering as the cluster is scripted to be: up, down, or failing with an error."""

    def __init__(self) -> None:
        self.up = True
        self.error: Exception | None = None

    async def __call__(self) -> bool:
        if self.error is not None:
            raise self.error
        return self.up


def kafka_lines(logged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in logged if str(line["event"]).startswith("kafka.")]


async def probe_for(watcher: KafkaReachability, clock: Clock, seconds: int) -> None:
    for _ in range(seconds // 5):  # one probe every 5 s
        await watcher.check()
        clock.now += 5


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    captured_logging: Callable[[], list[dict[str, Any]]],
) -> None:
    clock, cluster = Clock(), Cluster()
    watcher = KafkaReachability(SERVERS, probe=cluster, clock=clock)

    await probe_for(watcher, clock, 30)
    assert kafka_lines(captured_logging()) == []  # reachable all along: nothing to say

    cluster.up = False
    await probe_for(watcher, clock, 20)
    cluster.up = True
    await probe_for(watcher, clock, 30)

    unreachable, back = kafka_lines(captured_logging())
    assert (unreachable["event"], unreachable["level"]) == ("kafka.unreachable", "warning")
    assert unreachable["bootstrap_servers"] == SERVERS
    assert unreachable["last_reachable_s_ago"] == 5.0
    assert (back["event"], back["level"]) == ("kafka.reachable_again", "warning")
    assert back["bootstrap_servers"] == SERVERS
    assert back["unreachable_for_s"] == 20.0  # from the first failed probe to the first answered one


async def test_each_outage_gets_its_own_pair_of_lines(captured_logging: Callable[[], list[dict[str, Any]]]) -> None:
    clock, cluster = Clock(), Cluster()
    watcher = KafkaReachability(SERVERS, probe=cluster, clock=clock)
    for down_s in (10, 40):
        cluster.up = False
        await probe_for(watcher, clock, down_s)
        cluster.up = True
        await probe_for(watcher, clock, 10)

    logged = kafka_lines(captured_logging())
    assert [(line["event"], line.get("unreachable_for_s")) for line in logged] == [
        ("kafka.unreachable", None),
        ("kafka.reachable_again", 10.0),
        ("kafka.unreachable", None),
        ("kafka.reachable_again", 40.0),
    ]


async def test_a_probe_that_raises_counts_as_unreachable_and_names_the_error(
    captured_logging: Callable[[], list[dict[str, Any]]],
) -> None:
    clock, cluster = Clock(), Cluster()
    cluster.error = RuntimeError("no route to host")
    watcher = KafkaReachability(SERVERS, probe=cluster, clock=clock)

    await probe_for(watcher, clock, 15)

    (unreachable,) = kafka_lines(captured_logging())
    assert unreachable["event"] == "kafka.unreachable"
    assert unreachable["error"] == "RuntimeError('no route to host')"
    assert unreachable["last_reachable_s_ago"] is None  # never reached since the process started


async def test_the_watcher_probes_until_stopped(captured_logging: Callable[[], list[dict[str, Any]]]) -> None:
    stop, probes = asyncio.Event(), []

    async def down_then_stop() -> bool:
        probes.append(1)
        if len(probes) == 3:
            stop.set()
        return False

    await KafkaReachability(SERVERS, probe=down_then_stop, interval_s=0).watch(stop)

    assert len(probes) == 3
    assert [line["event"] for line in kafka_lines(captured_logging())] == ["kafka.unreachable"]
