"""``Idempotency-Key`` on every POST: a retried command returns the first answer and appends nothing.

How a keyed POST flows (:class:`IdempotencyMiddleware`, installed by ``create_app``):

1. The key (1–200 printable characters) and a hash of the request (canonical JSON body + query
   string) are looked up in ``idempotency_keys`` under the scope ``<service>:POST:<path>``.
   A stored answer with the same hash is **replayed** (same status and body, header
   ``Idempotency-Replayed: true``) before any handler runs — so a read-before-create handler never
   sees the retry. The same key with another request → 422 naming the header. A key whose first
   request is still running → 409.
2. Otherwise the request runs with an :class:`IdempotencyClaim` in a context variable.
   :class:`shared.eventsourcing.repository.AggregateRepository.save` picks it up and inserts the key
   row **inside the append statement** (a :class:`~shared.eventsourcing.store.StatementHook`), so
   the key exists if and only if the command's events do, at no extra round trip. A command that fails (rolled back, or
   refused before saving) leaves no key: the caller may retry it.
3. After a 2xx answer the middleware stores status and body in the key row (an upsert, which also
   claims the key for commands that appended nothing). If that last write fails the command stays
   applied; a retry then gets 409 telling so (``idempotency_response_lost``) instead of running it
   twice. A command that appended nothing and whose answer cannot be stored answers 503 (nothing was
   changed), and one whose key a twin took meanwhile answers as a retry would (422 for another body):
   the same key with another body is refused in every case.

Races: two requests with one key on one instance → the second gets 409 at once (an in-process set).
Across instances, the second request's key insert waits for the first's transaction and then finds
the row (``ON CONFLICT DO NOTHING``): its own transaction rolls back and it answers with the stored
response if there is one yet, else 409. Every non-2xx answer to a keyed request re-checks the table the
same way, so an event-store conflict caused by a concurrent twin also becomes a replay or a 409.

Writes outside the repository (e.g. a projection table updated by a POST) call :func:`record_claim`
inside their own transaction to get the same atomicity.

Purge: :func:`purge_expired` deletes keys older than ``idempotency_retention_hours`` (default 24 h);
``create_app`` runs it every few minutes from the API's lifespan, one instance at a time (advisory
lock) — the API owns the table, so no other role needs to know about it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import zlib
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db.engine import driver_connection, driver_of, shared_connection
from shared.eventsourcing.store import StatementHook, TransactionHook, chain_hooks
from shared.logging import get_logger
from shared.middleware import RETRY_AFTER_S, header, read_body, replay_body

log = get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotency-Replayed"
MAX_KEY_LENGTH = 200
#: A key row without a stored response older than this is not "in flight" any more: its response was lost.
IN_FLIGHT_TIMEOUT = timedelta(seconds=60)


class IdempotencyKeyInUse(Exception):
    """The key was recorded by another request while this one ran; this one's transaction rolls back."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    request_hash: str
    status_code: int | None
    response_body: bytes | None
    created_at: datetime


@dataclass(slots=True)
class IdempotencyClaim:
    """The key of the request being served; recorded at most once, in a command's transaction."""

    scope: str
    key: str
    request_hash: str
    recorded: bool = False
    conflicted: bool = False

    async def record(self, conn: AsyncConnection) -> None:
        """Insert the key row in ``conn``'s transaction; raise :class:`IdempotencyKeyInUse` if taken."""
        if self.recorded:
            return
        driver = await driver_of(conn)
        inserted = await driver.fetchval(_CLAIM, self.scope, self.key, self.request_hash)
        if inserted is None:
            self.conflicted = True
            raise IdempotencyKeyInUse(f"{HEADER} {self.key!r} was used by a concurrent request")

    def hook(self, then: TransactionHook | None = None) -> TransactionHook | None:
        """A transaction hook recording this claim (a statement the event store folds into the append),
        then running ``then``. A plain INSERT: a twin's key (committed, or committing meanwhile) fails the
        whole append with a unique violation, which becomes :class:`IdempotencyKeyInUse`."""
        if self.recorded:
            return then
        claim = StatementHook(
            _CLAIM_IN_APPEND,
            (self.scope, self.key, self.request_hash),
            conflicts=((_PRIMARY_KEY, self._in_use),),
        )
        return chain_hooks(claim, then)

    def _in_use(self) -> IdempotencyKeyInUse:
        self.conflicted = True
        return IdempotencyKeyInUse(f"{HEADER} {self.key!r} was used by a concurrent request")


_current: ContextVar[IdempotencyClaim | None] = ContextVar("tierstream_idempotency_claim", default=None)


def current_claim() -> IdempotencyClaim | None:
    """The claim of the HTTP request being served, if it carries an ``Idempotency-Key``."""
    return _current.get()


async def record_claim(conn: AsyncConnection) -> None:
    """Record the current request's key in ``conn``'s transaction (for writes outside the repository).

    Call :func:`mark_recorded` after that transaction committed."""
    claim = _current.get()
    if claim is not None:
        await claim.record(conn)


def mark_recorded() -> None:
    claim = _current.get()
    if claim is not None:
        claim.recorded = True


# -- storage ------------------------------------------------------------------------------------------
# Plain SQL for the driver (prepared once per connection): these run on every keyed POST.
_CLAIM = (
    "INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, $2, $3) "
    "ON CONFLICT (scope, key) DO NOTHING RETURNING 1"
)
_CLAIM_IN_APPEND = "INSERT INTO idempotency_keys (scope, key, request_hash) SELECT $1, $2, $3 WHERE {proceed}"
_PRIMARY_KEY = "idempotency_keys_pkey"
_LOOKUP = (
    "SELECT request_hash, status_code, response_body, created_at FROM idempotency_keys WHERE scope = $1 AND key = $2"
)
# Also covers commands that appended nothing (no row yet); never overwrites another request's answer.
# One statement, so autocommit is its transaction. Answers 1 when it stored the response, nothing when
# the key holds another request's (a twin's, possibly with another body).
_COMPLETE = (
    "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body, completed_at) "
    "VALUES ($1, $2, $3, $4, $5, now()) "
    "ON CONFLICT (scope, key) DO UPDATE SET status_code = EXCLUDED.status_code, "
    "response_body = EXCLUDED.response_body, completed_at = EXCLUDED.completed_at "
    "WHERE idempotency_keys.status_code IS NULL AND idempotency_keys.request_hash = EXCLUDED.request_hash "
    "RETURNING 1"
)
_PURGE = text(
    "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys "
    "WHERE created_at < now() - make_interval(secs => :secs) LIMIT :limit)"
)
PURGE_LOCK_KEY = zlib.crc32(b"tierstream.idempotency.purge")


class KeyStore(Protocol):
    """Where answers are kept: :class:`IdempotencyStore` (PostgreSQL), or a fake in unit tests."""

    async def lookup(self, scope: str, key: str) -> StoredResponse | None: ...

    async def complete(self, claim: IdempotencyClaim, status: int, body: bytes) -> bool:
        """Store the answer under the claim's key; False when the key holds another request's answer."""
        ...


class IdempotencyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def sharing(self) -> contextlib.AbstractAsyncContextManager[None]:
        """One connection for a keyed request's lookup, command and answer (see ``shared_connection``)."""
        return shared_connection(self.engine)

    async def lookup(self, scope: str, key: str) -> StoredResponse | None:
        async with driver_connection(self.engine) as driver:
            row = await driver.fetchrow(_LOOKUP, scope, key)
        if row is None:
            return None
        body = bytes(row["response_body"]) if row["response_body"] is not None else None
        return StoredResponse(row["request_hash"], row["status_code"], body, row["created_at"])

    async def complete(self, claim: IdempotencyClaim, status: int, body: bytes) -> bool:
        async with driver_connection(self.engine) as driver:
            stored = await driver.fetchval(_COMPLETE, claim.scope, claim.key, claim.request_hash, status, body)
        return stored is not None


async def purge_expired(engine: AsyncEngine, retention: timedelta, *, batch: int = 10_000) -> int | None:
    """Delete keys older than ``retention``; None when another instance is purging right now."""
    total = 0
    while True:
        async with engine.begin() as conn:
            if not await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PURGE_LOCK_KEY}):
                return None if total == 0 else total
            result = await conn.execute(_PURGE, {"secs": retention.total_seconds(), "limit": batch})
        deleted = result.rowcount or 0
        total += deleted
        if deleted < batch:
            return total


async def purge_periodically(
    engine: AsyncEngine, retention: timedelta, stop: asyncio.Event, every_s: float = 300.0
) -> None:
    """Purge every ``every_s`` until ``stop``; database outages are logged and retried next round."""
    while not stop.is_set():
        try:
            purged = await purge_expired(engine, retention)
            if purged:
                log.info("idempotency.purged", rows=purged)
        except Exception as exc:
            log.warning("idempotency.purge_failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


# -- HTTP ---------------------------------------------------------------------------------------------
def request_hash(body: bytes, query_string: bytes) -> str:
    """SHA-256 of the request: JSON bodies canonicalised (key order and spacing do not matter)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(query_string + b"\0" + canonical).hexdigest()


def key_problem(key: str) -> str | None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        return f"must be 1 to {MAX_KEY_LENGTH} characters"
    if not key.isprintable() or not key.isascii():
        return "must be printable ASCII"
    return None


@dataclass
class _Buffered:
    status: int = 500
    headers: list[tuple[bytes, bytes]] | None = None
    body: bytes = b""


class IdempotencyMiddleware:
    """ASGI middleware implementing the flow in the module docstring for POST requests with a key."""

    def __init__(self, app: ASGIApp, *, service: str, store: KeyStore) -> None:
        self.app = app
        self.service = service
        self.store = store
        self._in_flight: set[tuple[str, str]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, b"idempotency-key") if scope["type"] == "http" and scope["method"] == "POST" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        problem = key_problem(key)
        if problem is not None:
            await _send_buffered(send, _json(422, {"detail": [_header_error(problem, key)]}))
            return
        body = await read_body(receive)
        claim = IdempotencyClaim(
            scope=f"{self.service}:POST:{scope['path']}",
            key=key,
            request_hash=request_hash(body, scope.get("query_string", b"")),
        )
        marker = (claim.scope, key)
        if marker in self._in_flight:
            await _send_buffered(send, _json(409, _in_flight_body(key)))
            return
        self._in_flight.add(marker)
        sharing = getattr(self.store, "sharing", None)
        answer: _Buffered | None = None
        try:
            try:
                async with sharing() if sharing is not None else contextlib.nullcontext():
                    answer = await self._serve(scope, replay_body(body, receive), claim)
            except Exception as exc:
                if answer is None:
                    raise
                # Only giving the connection back failed: the command's outcome (and its stored answer)
                # stands, so the caller gets it rather than a 500 for a command that was applied.
                log.warning("idempotency.connection_release_failed", key_scope=claim.scope, error=repr(exc))
            # Sent once the shared connection is back in the pool: a slow client holds no connection.
            await _send_buffered(send, answer)
        finally:
            self._in_flight.discard(marker)

    async def _serve(self, scope: Scope, receive: Receive, claim: IdempotencyClaim) -> _Buffered:
        """The answer to a keyed request: the stored one, the command's own, or a refusal."""
        stored = await self.store.lookup(claim.scope, claim.key)
        if stored is not None:
            return self._answer_from(stored, claim)
        response = await self._run(scope, receive, claim)
        if response is None:  # the key was taken by a concurrent twin
            return await self._answer_after_race(claim, fallback=None)
        if 200 <= response.status < 300:
            return await self._answer_success(claim, response)
        if not claim.recorded:
            return await self._answer_after_race(claim, fallback=response)
        return response

    async def _run(self, scope: Scope, receive: Receive, claim: IdempotencyClaim) -> _Buffered | None:
        response = _Buffered()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                response.status = message["status"]
                response.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                response.body += message.get("body", b"")

        token = _current.set(claim)
        try:
            await self.app(scope, receive, capture)
        except IdempotencyKeyInUse:
            return None
        finally:
            _current.reset(token)
        return response

    async def _answer_success(self, claim: IdempotencyClaim, response: _Buffered) -> _Buffered:
        """Store a 2xx answer under the key and answer with it — unless the key turned out to be another's.

        A command that appended nothing has recorded no key yet: storing the answer is what claims it.
        If a twin (same key, maybe another body) claimed it meanwhile, this request answers as a retry
        would (422 for another body, the twin's answer, or 409). If the answer cannot be stored at all,
        nothing would refuse the key's reuse with another body, so the caller gets 503 — truthfully:
        the command changed nothing. A command whose key committed with its events is applied: its
        answer goes out even if only the replay copy failed to store (a retry then gets 409)."""
        try:
            stored = await self.store.complete(claim, response.status, response.body)
        except Exception as exc:
            log.warning("idempotency.store_failed", key_scope=claim.scope, error=repr(exc))
            if not claim.recorded:
                body = {"detail": "the database is unavailable; nothing was changed, retry later"}
                return _json(503, body, (b"retry-after", str(RETRY_AFTER_S).encode()))
            stored = True
        if stored or claim.recorded:
            return response
        return await self._answer_after_race(claim, fallback=None)

    async def _answer_after_race(self, claim: IdempotencyClaim, fallback: _Buffered | None) -> _Buffered:
        """A failed or conflicted keyed request: if a twin recorded the key meanwhile, answer as it would."""
        try:
            stored = await self.store.lookup(claim.scope, claim.key)
        except Exception:
            stored = None
        if stored is not None:
            return self._answer_from(stored, claim)
        if fallback is not None:
            return fallback
        return _json(409, _in_flight_body(claim.key))

    @staticmethod
    def _answer_from(stored: StoredResponse, claim: IdempotencyClaim) -> _Buffered:
        if stored.request_hash != claim.request_hash:
            problem = "was already used with a different request; use a new key for a new command"
            return _json(422, {"detail": [_header_error(problem, claim.key)]})
        if stored.status_code is None or stored.response_body is None:
            return _json(409, _in_flight_body(claim.key, stored.created_at))
        return _raw(
            stored.status_code,
            stored.response_body,
            (b"content-type", b"application/json"),
            (REPLAYED_HEADER.lower().encode(), b"true"),
        )


def _in_flight_body(key: str, since: datetime | None = None) -> dict[str, Any]:
    if since is not None and datetime.now(since.tzinfo) - since > IN_FLIGHT_TIMEOUT:
        return {
            "detail": f"the command with {HEADER} {key!r} was applied, but its response was not recorded; "
            "read the resource to see its state",
            "code": "idempotency_response_lost",
        }
    return {
        "detail": f"a request with {HEADER} {key!r} is still in progress; retry later",
        "code": "idempotency_key_in_flight",
    }


def _header_error(msg: str, key: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": ["header", HEADER.lower()], "msg": f"{HEADER} {msg}", "input": key}


async def _send_buffered(send: Send, response: _Buffered) -> None:
    await send({"type": "http.response.start", "status": response.status, "headers": response.headers or []})
    await send({"type": "http.response.body", "body": response.body})


def _json(status: int, body: dict[str, Any], *headers: tuple[bytes, bytes]) -> _Buffered:
    return _raw(status, json.dumps(body).encode(), (b"content-type", b"application/json"), *headers)


def _raw(status: int, body: bytes, *headers: tuple[bytes, bytes]) -> _Buffered:
    return _Buffered(status, [*headers, (b"content-length", str(len(body)).encode())], body)
