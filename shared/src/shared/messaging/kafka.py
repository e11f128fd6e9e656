"""Kafka clients configured the one way this project uses them, and topic administration."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from aiokafka import AIOKafkaClient, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

#: Topics keep events forever (projections are rebuilt from the earliest offset), no compaction.
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


#: How long a request waits for the broker, and how long a batch for a partition without a known leader
#: waits before it fails (the relay then replaces its producer and backs off). A batch sent to a leader
#: that stays known does not expire: the idempotent producer retries it until the broker answers (the
#: relay's ACK_TIMEOUT_S bounds its own wait); if the leader becomes unknown meanwhile, a batch older than
#: this fails at once. 10 s rather than aiokafka's 30 s.
PRODUCER_REQUEST_TIMEOUT_MS = 10_000
#: Least time from the end of one metadata refresh a producer asks for to the start of the next (aiokafka's
#: retry_backoff_ms default; the Java producer waits retry.backoff.ms likewise). See pace_metadata_refreshes.
METADATA_REFRESH_MIN_INTERVAL_S = 0.1
#: How often clients refresh topic metadata (aiokafka's default: 5 minutes). Partitions added to a topic
#: reach producers and consumer groups within this; a request per client and minute costs nothing.
METADATA_MAX_AGE_MS = 60_000


def make_producer(
    bootstrap_servers: str, *, client_id: str, request_timeout_ms: int = PRODUCER_REQUEST_TIMEOUT_MS
) -> AIOKafkaProducer:
    """Idempotent producer (implies acks=all): retries never duplicate or reorder within a partition."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=request_timeout_ms,
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
    )
    pace_metadata_refreshes(producer.client, METADATA_REFRESH_MIN_INTERVAL_S, timeout_s=request_timeout_ms / 1000)
    return producer


def pace_metadata_refreshes(client: AIOKafkaClient, min_interval_s: float, *, timeout_s: float) -> None:
    """Make ``client.force_metadata_update`` start a refresh ``min_interval_s`` after the previous one ended.

    While it holds a batch for a partition without a known leader (a topic deleted, a broker shutting
    down), aiokafka 0.14's sender asks for a refresh and asks again the moment it ends, with no pause
    (``unknown_leaders_exist`` in aiokafka/producer/sender.py; neither ``retry_backoff_ms`` nor
    ``metadata_max_age_ms`` reaches it), until the batch expires after the request timeout: a core busy and
    ~4,000 metadata requests a second at the broker, or ~13,000 refused connects a second with it away.
    Calls while a refresh is pending or waiting join it, as aiokafka's own calls do. A refresh that has
    not ended after ``timeout_s`` counts as failed (``False``): one the client's ``close`` interrupted never
    ends. aiokafka offers no setting for it, so this replaces the method on this one client instance."""
    force = client.force_metadata_update
    next_at = 0.0
    pending: asyncio.Future[bool] | None = None

    async def paced() -> bool:
        nonlocal next_at
        loop = asyncio.get_running_loop()
        if (delay := next_at - loop.time()) > 0:
            await asyncio.sleep(delay)
        try:
            return bool(await asyncio.wait_for(force(), timeout_s))
        except TimeoutError:
            return False
        finally:
            next_at = loop.time() + min_interval_s

    def force_metadata_update() -> asyncio.Future[bool]:
        nonlocal pending
        if pending is None or pending.done():
            pending = asyncio.ensure_future(paced())
        return asyncio.shield(pending)

    client.force_metadata_update = force_metadata_update


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
