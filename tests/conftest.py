"""Session-wide fixtures: real Kafka and PostgreSQL (started once), fresh databases and topic
namespaces per test. Where they come from is decided in one place: :mod:`shared.testing.infra`
(environment → testcontainers → the project's local scripts)."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from shared.db.engine import to_asyncpg_url, to_libpq_url
from shared.db.migrations import upgrade
from shared.events.topics import Topics
from shared.messaging.kafka import ensure_topics
from shared.testing import infra

REPO = Path(__file__).resolve().parents[1]
DATA_FILE = REPO.parent / "shared" / "data" / "online_retail.csv.gz"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    handle = infra.kafka_bootstrap()
    yield handle.bootstrap_servers
    handle.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a PostgreSQL server (database ``postgres``) whose role may create databases."""
    handle = infra.postgres_server()
    yield handle.url
    handle.stop()


def migrations_of(service: str) -> Path:
    return importlib.import_module(f"{service}.__main__").DEFINITION.migrations


DatabaseFactory = Callable[[str], Awaitable[str]]


@pytest.fixture
async def unmigrated_database(pg_server: str) -> AsyncIterator[str]:
    """URL of a database of its own that does not exist yet (``shared.db.migrations.upgrade`` creates it),
    for tests that migrate step by step; dropped after the test, whatever holds connections to it."""
    name = unique("t_migrate_")
    yield infra.with_database(to_asyncpg_url(pg_server), name)
    conn = await asyncpg.connect(to_libpq_url(pg_server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_factory(pg_server: str) -> AsyncIterator[DatabaseFactory]:
    """``await make("orders")`` → URL of a fresh, migrated database of that service.

    Each service's migrations run once per session into a template; tests get copies (fast)."""
    templates: dict[str, str] = {}
    created: list[str] = []
    admin_url = to_libpq_url(pg_server)
    session_tag = uuid.uuid4().hex[:6]

    async def make(service: str) -> str:
        if service not in templates:
            name = f"tmpl_{session_tag}_{service}"
            await upgrade(migrations_of(service), infra.with_database(to_asyncpg_url(pg_server), name))
            templates[service] = name
            created.append(name)
        name = unique(f"t_{service}_")
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{templates[service]}"')
        finally:
            await conn.close()
        created.append(name)
        return infra.with_database(to_asyncpg_url(pg_server), name)

    yield make
    conn = await asyncpg.connect(admin_url)
    try:
        for name in reversed(created):
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def namespace() -> str:
    """A topic namespace of this test's own: no other test sees its events."""
    return unique("t") + "."


@pytest.fixture
async def topics(kafka_bootstrap: str, namespace: str) -> Topics:
    names = Topics(namespace)
    await ensure_topics(kafka_bootstrap, names.all(), partitions=3)
    return names
