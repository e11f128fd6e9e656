"""Idempotency-Key against real PostgreSQL: the key commits with the command's events, or not at all.

A minimal event-sourced API (one aggregate, the shared repository and ``create_app``) stands in for a
service, so these tests pin the shared mechanism whatever the services' domains do.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI, status
from pydantic import BaseModel
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.api import CorrelationId, ExpectedVersion, NotFound, create_app, database_check
from shared.db.engine import create_engine
from shared.events.envelope import EventPayload
from shared.events.registry import EventRegistry
from shared.eventsourcing.aggregate import Aggregate, DomainError
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import PostgresEventStore
from shared.idempotency import purge_expired
from shared.settings import ApiSettings

pytestmark = pytest.mark.integration

registry = EventRegistry()


@registry.register
class Counted(EventPayload):
    event_type: ClassVar[str] = "TallyCounted"
    tally_id: str
    amount: int


class Tally(Aggregate):
    aggregate_type: ClassVar[str] = "tally"
    event_registry: ClassVar[EventRegistry] = registry

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.total = 0

    @property
    def customer_id(self) -> str:
        return f"cust-{self.id}"

    def _apply(self, event: BaseModel) -> None:
        assert isinstance(event, Counted)
        self.total += event.amount

    def count(self, amount: int) -> None:
        if amount <= 0:
            raise DomainError("amounts must be positive")
        self._record(Counted(tally_id=self.id, amount=amount))


class CountIn(BaseModel):
    amount: int
    tally_id: str | None = None
    #: test switches: fail inside the append transaction, or after it committed
    fail_in_transaction: bool = False
    fail_after_commit: bool = False


class TallyOut(BaseModel):
    tally_id: str
    total: int
    version: int


def tally_api(engine: AsyncEngine) -> FastAPI:
    repo = AggregateRepository(PostgresEventStore(engine), Tally, producer="test", topic="t.tallies")
    router = APIRouter(prefix="/tallies")

    async def explode(_conn: AsyncConnection) -> None:
        raise ConnectionResetError("connection lost inside the append transaction")  # → 503

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=TallyOut)
    async def open_tally(body: CountIn, cid: CorrelationId) -> TallyOut:
        tally_id = body.tally_id or uuid.uuid4().hex
        if await repo.get(tally_id) is not None:  # read-before-create, like the services' handlers
            raise DomainError(f"tally {tally_id} already exists")
        tally = Tally(tally_id)
        tally.count(body.amount)
        await repo.save(tally, correlation_id=cid, hook=explode if body.fail_in_transaction else None)
        if body.fail_after_commit:
            raise ConnectionResetError("connection lost after the commit, before answering")  # → 503
        return TallyOut(tally_id=tally.id, total=tally.total, version=tally.version)

    @router.post("/{tally_id}/counts", response_model=TallyOut)
    async def count(tally_id: str, body: CountIn, cid: CorrelationId, expected: ExpectedVersion) -> TallyOut:
        tally = await repo.get(tally_id)
        if tally is None:
            raise NotFound("tally", tally_id)
        tally.count(body.amount)
        await repo.save(tally, correlation_id=cid, expected_version=expected)
        return TallyOut(tally_id=tally.id, total=tally.total, version=tally.version)

    @router.post("/{tally_id}/audits", response_model=TallyOut)
    async def audit(tally_id: str, body: CountIn, cid: CorrelationId) -> TallyOut:
        """A command that records nothing (like a customers command that changes nothing)."""
        tally = await repo.get(tally_id)
        if tally is None:
            raise NotFound("tally", tally_id)
        await repo.save(tally, correlation_id=cid)
        return TallyOut(tally_id=tally.id, total=tally.total, version=tally.version)

    return create_app(
        service="tallies",
        title="tallies",
        description="test",
        routers=[router],
        ready_checks={"database": database_check(engine)},
        settings=ApiSettings(TIERSTREAM_API_TOKENS={"tok-test-0001": ["*"]}),
    )


@pytest.fixture
async def engine(database_factory) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    engine = create_engine(await database_factory("orders"))
    yield engine
    await engine.dispose()


def client_for(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": "Bearer tok-test-0001"}
    return httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers, timeout=30)


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(tally_api(engine)) as c:
        yield c


async def scalar(engine: AsyncEngine, sql: str, **params: object) -> object:
    async with engine.connect() as conn:
        return await conn.scalar(text(sql), params)


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def test_a_retried_create_replays_the_answer_even_though_the_handler_reads_before_creating(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = {"tally_id": "t-1", "amount": 5}
    first = await client.post("/tallies", json=body, headers=key("create-t-1"))
    retry = await client.post("/tallies", json=body, headers=key("create-t-1"))
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() == {"tally_id": "t-1", "total": 5, "version": 1}
    assert retry.headers["Idempotency-Replayed"] == "true"
    assert retry.headers["ETag"] == '"1"'
    assert await scalar(engine, "SELECT count(*) FROM events") == 1
    assert await scalar(engine, "SELECT count(*) FROM outbox") == 1
    assert await scalar(engine, "SELECT status_code FROM idempotency_keys WHERE key = 'create-t-1'") == 201
    # without the key, the same command is refused by the handler's own rule
    assert (await client.post("/tallies", json=body)).status_code == 409


async def test_a_retry_with_another_body_is_422_and_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await client.post("/tallies", json={"tally_id": "t-2", "amount": 1}, headers=key("k-2"))
    response = await client.post("/tallies", json={"tally_id": "t-2", "amount": 2}, headers=key("k-2"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert await scalar(engine, "SELECT count(*) FROM events") == 1


async def test_a_command_that_appends_nothing_still_refuses_its_key_with_another_body(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await client.post("/tallies", json={"tally_id": "t-10", "amount": 1})
    first = await client.post("/tallies/t-10/audits", json={"amount": 1}, headers=key("audit-1"))
    assert first.status_code == 200
    replay = await client.post("/tallies/t-10/audits", json={"amount": 1}, headers=key("audit-1"))
    assert replay.status_code == 200 and replay.headers["Idempotency-Replayed"] == "true"
    other = await client.post("/tallies/t-10/audits", json={"amount": 2}, headers=key("audit-1"))
    assert other.status_code == 422, other.text
    assert other.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert await scalar(engine, "SELECT count(*) FROM events") == 1


async def test_the_same_key_on_another_path_is_another_scope(client: httpx.AsyncClient) -> None:
    created = await client.post("/tallies", json={"tally_id": "t-3", "amount": 1}, headers=key("shared-key"))
    counted = await client.post("/tallies/t-3/counts", json={"amount": 1}, headers=key("shared-key"))
    assert created.status_code == 201 and counted.status_code == 200
    assert counted.json()["version"] == 2


async def test_refused_and_rolled_back_commands_do_not_consume_the_key(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    refused = await client.post("/tallies", json={"tally_id": "t-4", "amount": 0}, headers=key("k-4"))
    assert refused.status_code == 409
    rolled_back = await client.post(
        "/tallies", json={"tally_id": "t-4", "amount": 3, "fail_in_transaction": True}, headers=key("k-5")
    )
    assert rolled_back.status_code == 503
    assert await scalar(engine, "SELECT count(*) FROM events") == 0
    assert await scalar(engine, "SELECT count(*) FROM idempotency_keys") == 0
    assert (await client.post("/tallies", json={"tally_id": "t-4", "amount": 3}, headers=key("k-4"))).status_code == 201


async def test_a_command_that_committed_but_never_answered_is_not_applied_again(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = {"tally_id": "t-6", "amount": 3, "fail_after_commit": True}
    crashed = await client.post("/tallies", json=body, headers=key("k-6"))
    assert crashed.status_code == 503
    retry = await client.post("/tallies", json=body, headers=key("k-6"))
    assert retry.status_code == 409
    assert retry.json()["code"] in {"idempotency_key_in_flight", "idempotency_response_lost"}
    assert await scalar(engine, "SELECT count(*) FROM events") == 1  # the key committed with the event


async def test_twins_on_two_instances_apply_once_and_the_loser_replays_or_gets_409(engine: AsyncEngine) -> None:
    """Neither instance knows the other's in-flight requests: the key row's primary key decides."""
    body = {"amount": 7}  # no id: each twin would create its own tally
    async with client_for(tally_api(engine)) as one, client_for(tally_api(engine)) as two:
        blocker = await engine.connect()
        trans = await blocker.begin()
        await blocker.execute(text("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE"))  # reads pass, inserts wait
        try:
            twins = [
                asyncio.create_task(one.post("/tallies", json=body, headers=key("twin"))),
                asyncio.create_task(two.post("/tallies", json=body, headers=key("twin"))),
            ]
            waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'idempotency_keys'::regclass"
            for _ in range(200):
                if await scalar(engine, waiting) == 2:
                    break
                await asyncio.sleep(0.05)
            assert await scalar(engine, waiting) == 2, "both twins should be waiting to record the key"
        finally:
            await trans.rollback()
            await blocker.close()
        answers = await asyncio.gather(*twins)
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([201, 201], [201, 409]), [a.text for a in answers]
    assert await scalar(engine, "SELECT count(DISTINCT stream_id) FROM events") == 1
    if statuses == [201, 201]:
        assert answers[0].json() == answers[1].json()
        assert sum(a.headers.get("Idempotency-Replayed") == "true" for a in answers) == 1


async def test_twins_with_one_key_and_two_bodies_that_append_nothing_give_one_answer_and_one_422(
    engine: AsyncEngine,
) -> None:
    """Commands that append nothing claim their key only when their answer is stored: the twin that stores
    second must not answer as if its key were fresh."""
    async with client_for(tally_api(engine)) as one, client_for(tally_api(engine)) as two:
        await one.post("/tallies", json={"tally_id": "t-11", "amount": 1})
        blocker = await engine.connect()
        trans = await blocker.begin()
        await blocker.execute(text("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE"))  # reads pass, inserts wait
        try:
            twins = [
                asyncio.create_task(one.post("/tallies/t-11/audits", json={"amount": 1}, headers=key("audit-twin"))),
                asyncio.create_task(two.post("/tallies/t-11/audits", json={"amount": 2}, headers=key("audit-twin"))),
            ]
            waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'idempotency_keys'::regclass"
            for _ in range(200):
                if await scalar(engine, waiting) == 2:
                    break
                await asyncio.sleep(0.05)
            assert await scalar(engine, waiting) == 2, "both twins should be waiting to store their answer"
        finally:
            await trans.rollback()
            await blocker.close()
        answers = await asyncio.gather(*twins)
    assert sorted(a.status_code for a in answers) == [200, 422], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 422)
    assert refused.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert await scalar(engine, "SELECT count(*) FROM idempotency_keys WHERE key = 'audit-twin'") == 1


async def test_a_keyed_command_checks_out_one_connection_for_its_lookup_command_and_answer(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await client.post("/tallies", json={"tally_id": "t-12", "amount": 1})
    checkouts: list[object] = []

    def count(_dbapi: object, _record: object, _proxy: object) -> None:
        checkouts.append(_dbapi)

    event.listen(engine.sync_engine, "checkout", count)
    try:
        counted = await client.post("/tallies/t-12/counts", json={"amount": 2}, headers=key("one-connection"))
        assert counted.status_code == 200 and counted.json()["version"] == 2
        assert len(checkouts) == 1  # not three: lookup, load + append, storing the answer
        replay = await client.post("/tallies/t-12/counts", json={"amount": 2}, headers=key("one-connection"))
        assert replay.headers["Idempotency-Replayed"] == "true"
        assert len(checkouts) == 2
    finally:
        event.remove(engine.sync_engine, "checkout", count)
    assert await scalar(engine, "SELECT status_code FROM idempotency_keys WHERE key = 'one-connection'") == 200


async def test_keys_are_purged_by_age(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await client.post("/tallies", json={"tally_id": "t-7", "amount": 1}, headers=key("old"))
    await client.post("/tallies", json={"tally_id": "t-8", "amount": 1}, headers=key("new"))
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE idempotency_keys SET created_at = now() - interval '2 days' WHERE key = 'old'"))
    assert await purge_expired(engine, timedelta(hours=24)) == 1
    assert await scalar(engine, "SELECT array_agg(key) FROM idempotency_keys") == ["new"]


async def test_the_api_lifespan_purges_expired_keys_in_the_background(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await client.post("/tallies", json={"tally_id": "t-9", "amount": 1}, headers=key("expired"))
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE idempotency_keys SET created_at = now() - interval '30 days'"))
    app = tally_api(engine)
    async with app.router.lifespan_context(app):  # what uvicorn runs around serving
        for _ in range(100):
            if await scalar(engine, "SELECT count(*) FROM idempotency_keys") == 0:
                break
            await asyncio.sleep(0.05)
    assert await scalar(engine, "SELECT count(*) FROM idempotency_keys") == 0
