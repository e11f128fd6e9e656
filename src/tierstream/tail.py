"""``tierstream tail``: the records on a topic, one JSON line each (partition, offset, key, value).

The topic is checked before anything is read: a name Kafka cannot have, a broker that does not answer
and a topic the cluster does not hold each end the command with a message (aiokafka itself would log a
warning and wait for the topic forever).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from aiokafka.errors import KafkaError

#: What Kafka accepts as a topic name (its ``Topic.validate``): 1–249 of these characters.
TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
SHOWN_TOPICS = 20


T = TypeVar("T")


class TailError(RuntimeError):
    """The topic cannot be tailed; the message says why and what to do."""


class Record(Protocol):
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Consumer(Protocol):
    """The part of :class:`aiokafka.AIOKafkaConsumer` the tail uses (tests pass a fake)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def topics(self) -> set[str]: ...
    def subscribe(self, topics: list[str]) -> None: ...
    def __aiter__(self) -> AsyncIterator[Any]: ...


def kafka_consumer(bootstrap: str, from_beginning: bool) -> Consumer:
    """A consumer outside any group: it commits nothing and starts at the earliest or the latest offset."""
    from aiokafka import AIOKafkaConsumer

    consumer: Consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    return consumer


def check_topic_name(topic: str) -> None:
    if not TOPIC_NAME.fullmatch(topic) or topic in (".", ".."):
        raise TailError(
            f"{topic!r} is not a topic name: 1 to 249 letters, digits, '.', '_' or '-' (e.g. crm.orders.v1)"
        )


async def tail(
    topic: str,
    bootstrap: str,
    *,
    from_beginning: bool,
    limit: int | None,
    emit: Callable[[str], None],
    consumer_factory: Callable[[str, bool], Consumer] | None = None,
) -> int:
    """Print (``emit``) each record on ``topic`` as one JSON line until ``limit`` records (None: until
    cancelled); the number printed. ``consumer_factory(bootstrap, from_beginning)``: :func:`kafka_consumer`."""
    check_topic_name(topic)
    if not bootstrap.strip():
        raise TailError("--bootstrap is empty: give Kafka's host:port (e.g. 127.0.0.1:9092)")
    # made here, in the loop: aiokafka binds to the running one
    consumer = (consumer_factory or kafka_consumer)(bootstrap, from_beginning)
    known = await connect(consumer, bootstrap, consumer.topics)
    try:
        check_topic_known(topic, bootstrap, known)
        consumer.subscribe([topic])
        seen = 0
        async for record in consumer:
            emit(record_line(record))
            seen += 1
            if limit is not None and seen >= limit:
                break
        return seen
    finally:
        await consumer.stop()


async def connect(client: Any, bootstrap: str, known_topics: Callable[[], Awaitable[T]]) -> T:
    """Start the Kafka ``client`` and return what ``known_topics`` fetches, or stop it and raise
    :class:`TailError` saying Kafka cannot be reached (aiokafka's own "Unable connect" line kept quiet)."""
    try:
        with _quiet("aiokafka"):  # its "Unable connect to …" line would come before ours, saying less
            await client.start()
            return await known_topics()
    except (KafkaError, OSError, ValueError) as exc:
        await client.stop()
        raise TailError(f"cannot reach Kafka at {bootstrap} ({exc}); is the stack up? (tierstream up)") from exc


def check_topic_known(
    topic: str, bootstrap: str, known: Iterable[str], error: Callable[[str], Exception] = TailError
) -> None:
    """An ``error`` naming the crm topics the cluster holds, when ``topic`` is not among ``known``."""
    if topic not in known:
        raise error(f"no topic {topic!r} in the cluster at {bootstrap}; {_listing(known)}")


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """``logger_name`` logs nothing below CRITICAL for the block (what it would say, the command says)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def record_line(record: Record) -> str:
    """One record as one line of JSON: the value parsed when it is JSON, key and value decoded as UTF-8
    with undecodable bytes replaced (a record is shown, never refused)."""
    value = _text(record.value)
    try:
        parsed = json.loads(value) if value else value
    except ValueError:
        parsed = value
    line = {"partition": record.partition, "offset": record.offset, "key": _text(record.key), "value": parsed}
    return json.dumps(line, ensure_ascii=False, default=str)


def _text(raw: bytes | None) -> str | None:
    return raw.decode("utf-8", "replace") if raw is not None else None


def _listing(known: Iterable[str]) -> str:
    """The topics there are: the contract ones (``crm.…``) when any, else namespaced contract ones
    (``<namespace>crm.…``), else all but Kafka's own."""
    visible = sorted(t for t in known if not t.startswith("__"))
    contract = [t for t in visible if t.startswith("crm.")] or [t for t in visible if ".crm." in t]
    shown = contract or visible
    if not shown:
        return "the cluster has no topics yet"
    more = f" and {len(shown) - SHOWN_TOPICS} more" if len(shown) > SHOWN_TOPICS else ""
    return f"{'its crm topics' if contract else 'its topics'}: {', '.join(shown[:SHOWN_TOPICS])}{more}"
