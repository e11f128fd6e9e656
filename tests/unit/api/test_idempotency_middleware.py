"""The Idempotency-Key flow and the error mapping, with an in-memory key store (no database)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.api import create_app
from shared.idempotency import (
    IdempotencyClaim,
    StoredResponse,
    current_claim,
    key_problem,
    request_hash,
)
from shared.settings import ApiSettings

pytestmark = pytest.mark.unit


class FakeKeyStore:
    """Same contract as :class:`shared.idempotency.IdempotencyStore`, in memory."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], StoredResponse] = {}
        self.failing = False

    async def lookup(self, scope: str, key: str) -> StoredResponse | None:
        return self.rows.get((scope, key))

    async def complete(self, claim: IdempotencyClaim, status: int, body: bytes) -> bool:
        if self.failing:
            raise OSError("connection refused")
        existing = self.rows.get((claim.scope, claim.key))
        if existing is None or (existing.status_code is None and existing.request_hash == claim.request_hash):
            self.rows[(claim.scope, claim.key)] = StoredResponse(claim.request_hash, status, body, datetime.now(UTC))
            return True
        return False


class Commands:
    def __init__(self) -> None:
        self.applied: list[dict[str, object]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.claims: list[IdempotencyClaim | None] = []
        self.entered = asyncio.Event()


def build(commands: Commands, store: FakeKeyStore) -> FastAPI:
    router = APIRouter()

    @router.post("/things", status_code=201)
    async def create(request: Request) -> dict[str, object]:
        body = await request.json()
        commands.claims.append(current_claim())
        commands.entered.set()
        await commands.release.wait()
        if body.get("fail"):
            raise OperationalError("INSERT …", {}, ConnectionRefusedError("database down"))  # → 503
        commands.applied.append(body)
        return {"id": len(commands.applied), "version": 1}

    return create_app(
        service="things",
        title="t",
        description="d",
        routers=[router],
        ready_checks={},
        settings=ApiSettings(TIERSTREAM_API_TOKENS={"tok-test-0001": ["*"]}),
        idempotency_store=store,
    )


@pytest.fixture
def commands() -> Commands:
    return Commands()


@pytest.fixture
def store() -> FakeKeyStore:
    return FakeKeyStore()


@pytest.fixture
async def client(commands: Commands, store: FakeKeyStore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build(commands, store), raise_app_exceptions=False)
    headers = {"Authorization": "Bearer tok-test-0001"}
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as c:
        yield c


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def test_a_retry_replays_the_first_answer_and_runs_nothing(client: httpx.AsyncClient, commands: Commands) -> None:
    first = await client.post("/things", json={"name": "a"}, headers=key("k-1"))
    again = await client.post("/things", json={"name": "a"}, headers=key("k-1"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotency-Replayed"] == "true"
    assert "Idempotency-Replayed" not in first.headers
    assert again.headers["ETag"] == first.headers["ETag"] == '"1"'
    assert len(commands.applied) == 1


async def test_the_same_key_with_another_body_is_422_naming_the_header(
    client: httpx.AsyncClient, commands: Commands
) -> None:
    await client.post("/things", json={"name": "a"}, headers=key("k-2"))
    response = await client.post("/things", json={"name": "b"}, headers=key("k-2"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert "Idempotency-Key" in response.json()["detail"][0]["msg"]
    assert len(commands.applied) == 1


@pytest.mark.parametrize("bad", ["", "x" * 201, "naïve"])
async def test_a_key_must_be_1_to_200_printable_ascii_characters(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.post("/things", json={"name": "a"}, headers={"Idempotency-Key": bad.encode()})  # type: ignore[dict-item]
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "idempotency-key"]


async def test_a_failed_command_does_not_consume_the_key(client: httpx.AsyncClient, commands: Commands) -> None:
    failed = await client.post("/things", json={"fail": True}, headers=key("k-3"))
    assert failed.status_code == 503
    assert (await client.post("/things", json={"fail": True}, headers=key("k-3"))).status_code == 503
    assert commands.applied == []


async def test_a_key_whose_first_request_is_in_flight_is_409(client: httpx.AsyncClient, commands: Commands) -> None:
    commands.release.clear()
    first = asyncio.create_task(client.post("/things", json={"name": "a"}, headers=key("k-4")))
    await asyncio.wait_for(commands.entered.wait(), 5)
    second = await client.post("/things", json={"name": "a"}, headers=key("k-4"))
    assert second.status_code == 409
    assert second.json()["code"] == "idempotency_key_in_flight"
    commands.release.set()
    assert (await first).status_code == 201
    assert len(commands.applied) == 1


async def test_the_handler_sees_the_claim_only_for_keyed_posts(client: httpx.AsyncClient, commands: Commands) -> None:
    await client.post("/things", json={"name": "a"})
    await client.post("/things", json={"name": "b"}, headers=key("k-5"))
    unkeyed, keyed = commands.claims
    assert unkeyed is None
    assert keyed is not None and keyed.key == "k-5" and keyed.scope == "things:POST:/things"
    assert current_claim() is None


async def test_a_command_that_recorded_no_key_is_422_when_a_twin_took_the_key_with_another_body(
    client: httpx.AsyncClient, commands: Commands, store: FakeKeyStore
) -> None:
    """The handler appended nothing (no key in its transaction); a request on another instance with the
    same key and another body stored its answer first: this one must not answer as if it were new."""
    commands.release.clear()
    first = asyncio.create_task(client.post("/things", json={"name": "a"}, headers=key("k-8")))
    await commands.entered.wait()
    twin_hash = request_hash(b'{"name":"b"}', b"")
    store.rows[("things:POST:/things", "k-8")] = StoredResponse(twin_hash, 201, b'{"id":9}', datetime.now(UTC))
    commands.release.set()
    answer = await first
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["header", "idempotency-key"]


async def test_an_answer_that_cannot_be_stored_under_an_unrecorded_key_is_503(
    client: httpx.AsyncClient, store: FakeKeyStore
) -> None:
    """Nothing would then refuse the key with another body: the caller must retry (nothing changed)."""
    store.failing = True
    answer = await client.post("/things", json={"name": "a"}, headers=key("k-9"))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    store.failing = False
    assert (await client.post("/things", json={"name": "a"}, headers=key("k-9"))).status_code == 201
    assert (await client.post("/things", json={"name": "b"}, headers=key("k-9"))).status_code == 422


async def test_a_stored_key_without_a_response_is_in_flight_then_reported_lost(
    client: httpx.AsyncClient, store: FakeKeyStore
) -> None:
    body = b'{"name":"a"}'
    digest = request_hash(body, b"")
    now = datetime.now(UTC)
    store.rows[("things:POST:/things", "k-6")] = StoredResponse(digest, None, None, now)
    store.rows[("things:POST:/things", "k-7")] = StoredResponse(digest, None, None, now - timedelta(minutes=5))
    json_body = {"Content-Type": "application/json"}
    fresh = await client.post("/things", content=body, headers={**key("k-6"), **json_body})
    stale = await client.post("/things", content=body, headers={**key("k-7"), **json_body})
    assert (fresh.status_code, fresh.json()["code"]) == (409, "idempotency_key_in_flight")
    assert (stale.status_code, stale.json()["code"]) == (409, "idempotency_response_lost")


class SharingKeyStore(FakeKeyStore):
    """A store that, like the PostgreSQL one, lends one connection to a keyed request (``sharing``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lent = False

    @contextlib.asynccontextmanager
    async def sharing(self) -> AsyncIterator[None]:
        self.lent = True
        try:
            yield
        finally:
            self.lent = False


@pytest.mark.parametrize("replay", [False, True], ids=["fresh", "replayed"])
async def test_the_answer_is_sent_after_the_shared_connection_is_returned(commands: Commands, replay: bool) -> None:
    """A slow client must not hold a database connection while its answer is written."""
    store = SharingKeyStore()
    app = build(commands, store)
    body = b'{"name": "a"}'
    headers = [
        (b"host", b"api"),
        (b"authorization", b"Bearer tok-test-0001"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"idempotency-key", b"k-slow"),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/things",
        "raw_path": b"/things",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }

    async def post() -> list[tuple[int, bool]]:
        started: list[tuple[int, bool]] = []
        delivered = False

        async def receive() -> dict[str, object]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                started.append((message["status"], store.lent))  # type: ignore[arg-type]

        await app(scope, receive, send)  # type: ignore[arg-type]
        return started

    first = await post()
    answers = await post() if replay else first
    assert answers == [(201, False)]
    assert len(commands.applied) == 1


class ReleaseFailingKeyStore(FakeKeyStore):
    """Lends a connection whose return to the pool fails (the driver lost it meanwhile)."""

    @contextlib.asynccontextmanager
    async def sharing(self) -> AsyncIterator[None]:
        yield
        raise OSError("connection reset while returning it to the pool")


async def test_an_applied_command_is_answered_even_if_its_shared_connection_cannot_be_returned(
    commands: Commands,
) -> None:
    transport = httpx.ASGITransport(app=build(commands, ReleaseFailingKeyStore()), raise_app_exceptions=False)
    headers = {"Authorization": "Bearer tok-test-0001", **key("k-release")}
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as client:
        response = await client.post("/things", json={"name": "a"})
    assert response.status_code == 201, response.text
    assert response.json() == {"id": 1, "version": 1} and len(commands.applied) == 1


def test_the_request_hash_ignores_json_key_order_and_spacing_but_not_values_or_query() -> None:
    assert request_hash(b'{"a": 1, "b": [1, 2]}', b"") == request_hash(b'{"b":[1,2],"a":1}', b"")
    assert request_hash(b'{"a": 1}', b"") != request_hash(b'{"a": 2}', b"")
    assert request_hash(b'{"a": 1}', b"x=1") != request_hash(b'{"a": 1}', b"")
    assert request_hash(b"not json", b"") != request_hash(b"not json!", b"")


def test_key_rules() -> None:
    assert key_problem("a") is None
    assert key_problem("k" * 200) is None
    assert key_problem("") and key_problem("k" * 201) and key_problem("tab\there")


# -- error mapping --------------------------------------------------------------------------------
def failing_app() -> FastAPI:
    router = APIRouter()

    @router.post("/down")
    async def down() -> None:
        raise OperationalError("INSERT …", {}, ConnectionRefusedError("connection refused"))

    @router.post("/shutting-down")
    async def shutting_down() -> None:
        """What SQLAlchemy raises when PostgreSQL refuses new connections during its shutdown."""
        driver_error = asyncpg.exceptions.CannotConnectNowError("the database system is shutting down")
        wrapped = RuntimeError("asyncpg adapter error")
        wrapped.__cause__ = driver_error
        raise DBAPIError("connect", {}, wrapped)

    @router.post("/pool-exhausted")
    async def pool_exhausted() -> None:
        """What SQLAlchemy raises when every pooled connection is stuck on a hung server."""
        raise PoolTimeout("QueuePool limit of size 10 overflow 10 reached, connection timed out, timeout 10.00")

    @router.post("/bug")
    async def bug() -> None:
        raise RuntimeError("bug")

    return create_app(
        service="things",
        title="t",
        description="d",
        routers=[router],
        ready_checks={},
        settings=ApiSettings(TIERSTREAM_API_TOKENS={"tok-test-0001": ["*"]}),
    )


async def test_a_database_outage_is_503_with_retry_after_and_anything_else_500() -> None:
    transport = httpx.ASGITransport(app=failing_app(), raise_app_exceptions=False)
    headers = {"Authorization": "Bearer tok-test-0001"}
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as c:
        down = await c.post("/down")
        shutting_down = await c.post("/shutting-down")
        pool_exhausted = await c.post("/pool-exhausted")
        bug = await c.post("/bug")
    assert down.status_code == 503
    assert int(down.headers["Retry-After"]) > 0
    assert "nothing was changed" in down.json()["detail"]
    assert "X-Correlation-ID" in down.headers
    assert shutting_down.status_code == 503
    assert pool_exhausted.status_code == 503  # was 500 "internal error", with a traceback logged for each
    assert bug.status_code == 500 and bug.json() == {"detail": "internal error"}
