"""What every HTTP API of the project shares: health, metrics, correlation ids, error mapping.

Errors: request validation → 422 with field errors (FastAPI's shape); :class:`NotFound` → 404;
:class:`ConcurrencyConflict` and :class:`DomainError` → 409; the database unreachable → 503 with
``Retry-After`` (the command was not applied: its transaction never committed).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.eventsourcing.aggregate import DomainError
from shared.eventsourcing.store import ConcurrencyConflict, StoredEvent
from shared.logging import get_logger
from shared.messaging.consumer import is_transient
from shared.messaging.kafka import kafka_ready

log = get_logger(__name__)

REQUESTS = Counter("tierstream_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("tierstream_http_request_seconds", "HTTP request latency", ["service", "route"])
CORRELATION_HEADER = "X-Correlation-ID"


class NotFound(Exception):
    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident!r} not found")


ReadyCheck = Callable[[], Awaitable[bool]]


def correlation_id(request: Request) -> str:
    return request.state.correlation_id


#: Inject the request's correlation id into a route: ``async def route(cid: CorrelationId)``.
CorrelationId = Annotated[str, Depends(correlation_id)]


def expected_version(
    if_match: Annotated[
        str | None,
        Header(description='the aggregate version the command expects, e.g. "3" (as returned in ETag)'),
    ] = None,
) -> int | None:
    """Parse ``If-Match: "3"`` (or ``W/"3"`` or ``3``) into an expected aggregate version."""
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("header", "if-match"),
                    "msg": 'must be an aggregate version, e.g. "3"',
                    "input": if_match,
                }
            ]
        )
    return int(raw)


#: ``expected: ExpectedVersion`` on a command route: None, or the version from ``If-Match``.
ExpectedVersion = Annotated[int | None, Depends(expected_version)]


def database_check(engine: AsyncEngine) -> ReadyCheck:
    async def check() -> bool:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    return check


def kafka_check(bootstrap_servers: str) -> ReadyCheck:
    async def check() -> bool:
        return await kafka_ready(bootstrap_servers)

    return check


def create_app(
    *,
    service: str,
    title: str,
    description: str,
    routers: list[APIRouter],
    ready_checks: dict[str, ReadyCheck],
    version: str = "0.1.0",
    **fastapi_kwargs: Any,
) -> FastAPI:
    app = FastAPI(title=title, description=description, version=version, **fastapi_kwargs)

    @app.middleware("http")
    async def bind_correlation(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        cid = request.headers.get(CORRELATION_HEADER) or str(uuid.uuid4())
        request.state.correlation_id = cid
        with structlog.contextvars.bound_contextvars(correlation_id=cid):
            response = await call_next(request)
        response.headers[CORRELATION_HEADER] = cid
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        REQUESTS.labels(service, request.method, path, str(response.status_code)).inc()
        return response

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ConcurrencyConflict)
    async def conflict(_request: Request, exc: ConcurrencyConflict) -> JSONResponse:
        body = {"detail": str(exc), "code": "version_conflict", "current_version": exc.actual_version}
        return JSONResponse(body, status_code=409)

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "code": "rule_violated"}, status_code=409)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):
            log.warning("http.dependency_unavailable", path=request.url.path, error=repr(exc))
            return JSONResponse(
                {"detail": "the database is unavailable; nothing was changed, retry later"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        log.exception("http.unhandled", path=request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    health = APIRouter(tags=["operations"])

    @health.get("/health/live", summary="Liveness: the process answers")
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @health.get("/health/ready", summary="Readiness: database and Kafka answer")
    async def ready() -> JSONResponse:
        results = {name: await check() for name, check in ready_checks.items()}
        ok = all(results.values())
        body = {"status": "ok" if ok else "unavailable", "checks": results, "service": service}
        return JSONResponse(body, status_code=200 if ok else 503)

    @health.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(health)
    for router in routers:
        app.include_router(router)
    return app


class StoredEventOut(BaseModel):
    """One event of an aggregate's stream, as the read API returns it."""

    stream_version: int
    position: int
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    occurred_at: datetime
    data: dict[str, Any]
    correlation_id: str | None = None
    causation_id: str | None = None

    @classmethod
    def from_stored(cls, event: StoredEvent) -> StoredEventOut:
        return cls(
            stream_version=event.stream_version,
            position=event.position,
            event_id=event.event_id,
            event_type=event.event_type,
            schema_version=event.schema_version,
            occurred_at=event.occurred_at,
            data=event.data,
            correlation_id=event.metadata.get("correlation_id"),
            causation_id=event.metadata.get("causation_id"),
        )


#: An identifier chosen by a caller (customer, order, complaint ids): stable, URL-safe.
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
