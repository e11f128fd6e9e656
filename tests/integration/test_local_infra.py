"""The test infrastructure is real: a Kafka broker and a PostgreSQL server, from shared.testing.infra.

Whatever source infra picks (env, Docker, or the deploy/local scripts), these tests prove the broker
speaks the Kafka protocol end to end (idempotent producer, keys, headers, consumer groups, commits) and
the database is a real PostgreSQL server whose role can create databases.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.testing.infra import (
    KafkaHandle,
    PostgresHandle,
    asyncpg_url,
    kafka_bootstrap,
    plain_url,
    postgres_server,
    wait_for_kafka,
    with_database,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka() -> Iterator[KafkaHandle]:
    handle = kafka_bootstrap()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresHandle]:
    handle = postgres_server()
    try:
        yield handle
    finally:
        handle.stop()


# ------------------------------------------------------------------------------------------- Kafka


async def test_kafka_roundtrip_keeps_key_and_headers(kafka: KafkaHandle) -> None:
    topic = f"infra-test-{uuid.uuid4().hex}"
    headers = [("event_type", b"InfraChecked"), ("correlation_id", uuid.uuid4().hex.encode())]

    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, enable_idempotence=True)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b'{"ok": true}', key=b"customer-42", headers=headers)
        partitions = await producer.partitions_for(topic)
    finally:
        await producer.stop()
    assert sent.offset == 0

    if kafka.source == "local":  # our broker config: auto-created topics get KAFKA_NUM_PARTITIONS (3)
        assert len(partitions) == int(os.environ.get("KAFKA_NUM_PARTITIONS", "3"))

    group = f"infra-test-{uuid.uuid4().hex}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), timeout=60)
        tp = TopicPartition(topic, msg.partition)
        await consumer.commit({tp: msg.offset + 1})  # the group coordinator (offsets topic, RF 1) works
        committed = await consumer.committed(tp)
    finally:
        await consumer.stop()

    assert msg.key == b"customer-42"
    assert msg.value == b'{"ok": true}'
    assert list(msg.headers) == headers
    assert (msg.partition, msg.offset) == (sent.partition, sent.offset)
    assert committed == msg.offset + 1


def test_second_kafka_handle_reuses_and_leaves_the_broker_running(kafka: KafkaHandle) -> None:
    if kafka.source != "local":
        pytest.skip("reuse semantics belong to the local script")
    again = kafka_bootstrap(use_docker=False)
    assert again.bootstrap_servers == kafka.bootstrap_servers
    assert not again.started_here
    again.stop()  # must not stop the broker the module fixture owns
    wait_for_kafka(kafka.bootstrap_servers, timeout=5)


# ------------------------------------------------------------------------------------------- PostgreSQL


async def test_postgres_is_real_and_can_create_databases(pg: PostgresHandle) -> None:
    conn = await asyncpg.connect(pg.url, timeout=30)
    dbname = f"infra_test_{uuid.uuid4().hex[:12]}"
    try:
        version = await conn.fetchval("select version()")
        assert "PostgreSQL" in version
        await conn.execute(f'CREATE DATABASE "{dbname}"')
        try:
            other = await asyncpg.connect(with_database(pg.url, dbname), timeout=30)
            try:
                assert await other.fetchval("select current_database()") == dbname
            finally:
                await other.close()
        finally:
            await conn.execute(f'DROP DATABASE "{dbname}"')
        assert await conn.fetchval("select count(*) from pg_database where datname = $1", dbname) == 0
    finally:
        await conn.close()


async def test_second_pg_handle_reuses_and_leaves_the_server_running(pg: PostgresHandle) -> None:
    if pg.source != "local":
        pytest.skip("reuse semantics belong to the local script")
    again = postgres_server(use_docker=False)  # blocking subprocess call; fine in a test
    assert again.url == pg.url
    assert not again.started_here
    again.stop()
    conn = await asyncpg.connect(pg.url, timeout=10)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------- URL helpers


def test_url_helpers() -> None:
    base = "postgresql+asyncpg://u:p%40ss@127.0.0.1:5433/postgres?ssl=disable"
    assert plain_url(base) == "postgresql://u:p%40ss@127.0.0.1:5433/postgres?ssl=disable"
    assert asyncpg_url(plain_url(base)) == base
    assert with_database(base, "orders") == "postgresql+asyncpg://u:p%40ss@127.0.0.1:5433/orders?ssl=disable"
    assert with_database("postgresql://h/db", "a b") == "postgresql://h/a%20b"
    with pytest.raises(ValueError):
        plain_url("mysql://h/db")
