"""The ASGI middlewares ``create_app`` stacks around every service's routes (pure ASGI, no task per request).

Outside in: :class:`CorrelationMiddleware` (correlation id, request metrics) → :class:`ErrorMappingMiddleware`
(unhandled errors → 503 / 500 JSON) → bearer auth (:mod:`shared.auth`) →
:class:`~shared.input_guard.InputGuardMiddleware` (NUL characters → 422, bodies that are not JSON → 415) →
:class:`VersionETagMiddleware` → ``Idempotency-Key``
(:mod:`shared.idempotency`) → FastAPI's exception handlers and routes.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import structlog
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logging import get_logger
from shared.messaging.consumer import is_transient

log = get_logger(__name__)

REQUESTS = Counter("tierstream_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("tierstream_http_request_seconds", "HTTP request latency", ["service", "route"])
CORRELATION_HEADER = "X-Correlation-ID"
#: Seconds a caller should wait before retrying a command refused with 503.
RETRY_AFTER_S = 5
#: Answers larger than this are not inspected for a ``version`` (no ETag).
ETAG_MAX_BODY = 1 << 20


class CorrelationMiddleware:
    """Bind ``X-Correlation-ID`` (the caller's, or a new one) to logs, ``request.state`` and the answer;
    count and time every request by route template."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service
        # (method, route, status) → its labelled counter and histogram: ``labels()`` costs a lock and a
        # tuple build per call; the set of routes and statuses is small and fixed.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _metrics(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        children = self._children.get((method, route, status))
        if children is None:
            children = (REQUESTS.labels(self.service, method, route, str(status)), LATENCY.labels(self.service, route))
            self._children[(method, route, status)] = children
        return children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = header(scope, b"x-correlation-id") or str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = cid
        status = 500
        started = time.perf_counter()

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[CORRELATION_HEADER] = cid
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(correlation_id=cid)
        try:
            await self.app(scope, receive, answer)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
            count, latency = self._metrics(scope["method"], getattr(scope.get("route"), "path", "unmatched"), status)
            count.inc()
            latency.observe(time.perf_counter() - started)


class ErrorMappingMiddleware:
    """Unhandled exceptions → JSON: transient database/connection errors → 503 + Retry-After, else 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                raise
            if is_transient(exc):
                log.warning("http.dependency_unavailable", path=scope["path"], error=repr(exc))
                body = {"detail": "the database is unavailable; nothing was changed, retry later"}
                response = JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
            else:
                log.exception("http.unhandled", path=scope["path"])
                response = JSONResponse({"detail": "internal error"}, status_code=500)
            await response(scope, receive, send)


class VersionETagMiddleware:
    """``ETag: "<version>"`` on 200/201 JSON object answers with an integer top-level ``version``.

    Every single-aggregate read and command answer of this project carries the aggregate's version,
    so one rule gives them all an ETag to send back as ``If-Match``. An answer that already carries an
    ETag (a route that knows its version set it) is passed through unread: finding the version means
    holding the answer back and parsing it, ~85k instructions, a twelfth of a small command's framework
    work."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def tag(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if _may_carry_version(message):
                    start = message
                    return
                await send(message)
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(chunks)
                version = _version_of(body)
                if version is not None:
                    start["headers"] = [*start.get("headers", []), (b"etag", f'"{version}"'.encode())]
                await send(start)
                await send({"type": "http.response.body", "body": body})
            else:
                await send(message)

        await self.app(scope, receive, tag)


async def read_body(receive: Receive) -> bytes:
    """The whole request body (what a route would read), from the ASGI ``receive`` channel."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # client went away
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` channel that hands the app ``body`` (already read) once, then listens to ``receive``."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _may_carry_version(start: Message) -> bool:
    if start["status"] not in (200, 201):
        return False
    headers = dict(start.get("headers", []))
    if b"etag" in headers:
        return False
    length = headers.get(b"content-length")
    return headers.get(b"content-type", b"").startswith(b"application/json") and (
        length is not None and int(length) <= ETAG_MAX_BODY
    )


def _version_of(body: bytes) -> int | None:
    if not body.startswith(b"{") or b'"version"' not in body:
        return None
    try:
        version = json.loads(body).get("version")
    except ValueError:
        return None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def header(scope: Scope, name: bytes) -> str | None:
    """A request header's value (the first of that name), or None."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
