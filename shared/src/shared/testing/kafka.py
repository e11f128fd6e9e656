"""Test support for a real broker: read a topic into a list, produce raw bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord


async def read_topic(
    bootstrap_servers: str, topic: str, *, expect: int, timeout_s: float = 30.0
) -> list[ConsumerRecord]:
    """Read ``topic`` from the beginning until ``expect`` records arrived or the timeout passed."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while len(records) < expect and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for tp_records in batch.values():
                records.extend(tp_records)
    finally:
        await consumer.stop()
    return records


async def produce(bootstrap_servers: str, topic: str, messages: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Send (key, value) pairs and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
