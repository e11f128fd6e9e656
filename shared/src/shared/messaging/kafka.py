"""Kafka clients configured the one way this project uses them, and topic administration."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

#: Topics keep events forever (projections are rebuilt from the earliest offset), no compaction.
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


#: How long a send waits for the broker. aiokafka's sender retries metadata without a pause while a
#: partition's leader is unknown (a broker away: ~13,000 failed connects/s, a core busy) until the batch
#: expires after this long; the relay then replaces its producer and backs off. 10 s rather than aiokafka's
#: 30 s: benchmarks/relay_outage.py, 40 s outage, CPU 22.9 s → 8.1 s, everything still published once.
PRODUCER_REQUEST_TIMEOUT_MS = 10_000
#: How often clients refresh topic metadata (aiokafka's default: 5 minutes). Partitions added to a topic
#: reach producers and consumer groups within this; a request per client and minute costs nothing.
METADATA_MAX_AGE_MS = 60_000


def make_producer(
    bootstrap_servers: str, *, client_id: str, request_timeout_ms: int = PRODUCER_REQUEST_TIMEOUT_MS
) -> AIOKafkaProducer:
    """Idempotent producer (implies acks=all): retries never duplicate or reorder within a partition."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=request_timeout_ms,
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
    )


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[str], *, partitions: int, replication_factor: int = 1
) -> list[str]:
    """Create the missing ``topics`` with unlimited retention; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="tierstream-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return []
        new = [NewTopic(t, partitions, replication_factor, topic_configs=TOPIC_CONFIG) for t in missing]
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new, timeout_ms=30_000)
        return missing
    finally:
        await admin.close()


async def kafka_ready(bootstrap_servers: str, timeout_s: float = 3.0) -> bool:
    """True when the cluster answers a metadata request (used by readiness probes)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="tierstream-health",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
        return True
    except (KafkaConnectionError, TimeoutError, OSError):
        return False
    finally:
        await admin.close()
