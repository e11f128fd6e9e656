"""What every HTTP API of the project shares: auth, idempotency, ETags, errors, health, metrics.

Everything here is applied once by :func:`create_app`, so each service's API gets it without code of
its own (the caller-facing contract is docs/api.md):

* bearer tokens with ``<service>:read`` / ``<service>:write`` scopes (:mod:`shared.auth`);
* ``Idempotency-Key`` on every POST (:mod:`shared.idempotency`);
* ``ETag: "<version>"`` on every JSON object answer that has an integer ``version`` field, and
  ``If-Match`` on commands (:data:`ExpectedVersion`) → 409 when the aggregate moved on;
* input no route can take, refused before any route runs (:class:`~shared.input_guard.InputGuardMiddleware`):
  a NUL character in the path, a query parameter or a body string → 422 naming where; a body that is not
  JSON → 415;
* request bodies built on :class:`RequestBody` refuse unknown fields (422 ``extra_forbidden``), and every
  operation refuses query parameters it does not declare (same 422, by the input guard; public paths exempt);
* errors: request validation → 422 with field errors (FastAPI's shape, the echoed ``input`` cut short:
  :func:`~shared.input_guard.echoed_input`); :class:`NotFound` → 404;
  :class:`ConcurrencyConflict` and :class:`DomainError` → 409, a :class:`FieldRuleViolation` (a domain rule
  about one input field) → 422 with that field's error; the database unreachable → 503 with
  ``Retry-After`` (the command was not applied: its transaction never committed); anything else → 500.
  The last two are mapped by a middleware inside the correlation-id one, so even they carry
  ``X-Correlation-ID`` and are counted in the metrics, and the server does not log them twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import idempotency
from shared.auth import (
    DEFAULT_PUBLIC_PATHS,
    SECURITY_SCHEME,
    BearerAuthMiddleware,
    TokenRegistry,
    is_public,
    required_scope,
)
from shared.eventsourcing.aggregate import DomainError, FieldRuleViolation
from shared.eventsourcing.store import ConcurrencyConflict, StoredEvent
from shared.idempotency import IdempotencyMiddleware, IdempotencyStore, KeyStore, purge_periodically
from shared.input_guard import InputGuardMiddleware, echoed_input
from shared.logging import get_logger
from shared.messaging.kafka import kafka_ready
from shared.middleware import (
    CorrelationMiddleware,
    ErrorMappingMiddleware,
    VersionETagMiddleware,
)
from shared.settings import ApiSettings

log = get_logger(__name__)


class NotFound(Exception):
    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident!r} not found")


ReadyCheck = Callable[[], Awaitable[bool]]


def correlation_id_of(request: Request) -> str:
    """The correlation id :class:`~shared.middleware.CorrelationMiddleware` gave the request."""
    return request.state.correlation_id


# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
# a thread hop per request for what is a dictionary lookup.
async def correlation_id(request: Request) -> str:
    return correlation_id_of(request)


#: Inject the request's correlation id into a route: ``async def route(cid: CorrelationId)``. A dependency
#: costs FastAPI a resolution per request (~80k instructions, a twelfth of a small command's framework
#: work); a hot route takes ``request: Request`` (injected for free) and calls :func:`correlation_id_of`.
CorrelationId = Annotated[str, Depends(correlation_id)]


async def expected_version(
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


#: How long /health/ready waits for the database's ``SELECT 1`` (probes time out after a few seconds).
READY_CHECK_TIMEOUT_S = 3.0


class DatabaseCheck:
    """Readiness of the service's own database; ``create_app`` also finds the engine for idempotency here."""

    def __init__(self, engine: AsyncEngine, timeout_s: float = READY_CHECK_TIMEOUT_S) -> None:
        self.engine = engine
        self.timeout_s = timeout_s

    async def __call__(self) -> bool:
        """``SELECT 1`` within ``timeout_s``: a hung server is not ready (and does not hang the probe)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False


def database_check(engine: AsyncEngine) -> ReadyCheck:
    return DatabaseCheck(engine)


def kafka_check(bootstrap_servers: str) -> ReadyCheck:
    """Kafka's state for /health/ready: from the last probe, never waiting for one (:class:`CachedCheck`)."""

    async def probe() -> bool:
        return await kafka_ready(bootstrap_servers)

    return CachedCheck(probe)


class CachedCheck:
    """A check that answers at once with its probe's last result and refreshes it in the background when
    it is older than ``max_age_s``. A probe of a dependency that hangs (a frozen broker, a network black
    hole) takes its whole timeout — 3 s for Kafka — and a readiness probe with a shorter timeout would take
    the process out of service for a dependency it does not need to serve. The first call waits at most
    ``first_wait_s`` for the first probe; until a probe has answered, the answer is False (not known to be up).
    """

    def __init__(
        self,
        probe: ReadyCheck,
        *,
        max_age_s: float = 5.0,
        first_wait_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe, self.max_age_s, self.first_wait_s, self.clock = probe, max_age_s, first_wait_s, clock
        self.value = False
        self._probed_at: float | None = None
        self._running: asyncio.Task[None] | None = None

    async def __call__(self) -> bool:
        stale = self._probed_at is None or self.clock() - self._probed_at > self.max_age_s
        if stale and (self._running is None or self._running.done()):
            self._running = asyncio.create_task(self._refresh())
            if self._probed_at is None:
                await asyncio.wait({self._running}, timeout=self.first_wait_s)
        return self.value

    async def _refresh(self) -> None:
        try:
            self.value = await self.probe()
        except Exception:
            self.value = False
        self._probed_at = self.clock()


_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(
    *,
    service: str,
    title: str,
    description: str,
    routers: list[APIRouter],
    ready_checks: dict[str, ReadyCheck],
    advisory_checks: dict[str, ReadyCheck] | None = None,
    version: str = "0.1.0",
    settings: ApiSettings | None = None,
    engine: AsyncEngine | None = None,
    public_paths: Iterable[str] = (),
    idempotency_store: KeyStore | None = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """The FastAPI app of one service, with every guarantee its callers are owed (see docs/api.md).

    ``settings`` default to :class:`ApiSettings` read from the environment (tokens, environment);
    ``engine`` (the service's own database, for ``Idempotency-Key``) defaults to the one behind the
    ``DatabaseCheck`` in ``ready_checks``; without either, keyed POSTs run unprotected (logged once).
    ``public_paths`` adds paths served without a token (exact, or prefixes ending in "/");
    ``idempotency_store`` replaces the PostgreSQL key store (unit tests).

    FastAPI's native OpenTelemetry is off unless ``telemetry=`` says otherwise: the project observes
    through Prometheus metrics and structured logs and installs no OpenTelemetry SDK, and merely asking
    whether one is configured costs every request ~30k instructions (a fifteenth of a bare request)."""
    fastapi_kwargs.setdefault("telemetry", _NO_TELEMETRY)
    settings = settings or ApiSettings()
    engine = engine or next((c.engine for c in ready_checks.values() if isinstance(c, DatabaseCheck)), None)
    public = (*DEFAULT_PUBLIC_PATHS, *public_paths)
    fastapi_kwargs["lifespan"] = _lifespan(fastapi_kwargs.get("lifespan"), engine, settings)
    app = FastAPI(title=title, description=description, version=version, **fastapi_kwargs)

    _add_exception_handlers(app)
    # Starlette wraps the last added middleware outermost. Request path, outside in: correlation id +
    # metrics → errors mapped to 500/503 → bearer auth → NUL / non-JSON input refused → ETag from "version"
    # → Idempotency-Key → routes.
    store = idempotency_store or (IdempotencyStore(engine) if engine is not None else None)
    if store is not None:
        app.add_middleware(IdempotencyMiddleware, service=service, store=store)
    else:
        log.warning("api.idempotency_disabled", service=service, reason="no database engine")
    app.add_middleware(VersionETagMiddleware)
    app.add_middleware(InputGuardMiddleware, routes=app.router.routes, exempt_paths=public)
    app.add_middleware(
        BearerAuthMiddleware,
        service=service,
        registry=TokenRegistry(settings.effective_api_tokens()),
        public_paths=public,
    )
    app.add_middleware(ErrorMappingMiddleware)

    app.add_middleware(CorrelationMiddleware, service=service)

    app.include_router(operations_router(service, ready_checks, advisory_checks=advisory_checks))
    for router in routers:
        app.include_router(router)
    _document_guarantees(app, service, public)
    return app


def _add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = exc.errors()
        for error in raw:  # a validator's exception (ctx.error) would encode as {}: its message is in "msg"
            if isinstance(error.get("ctx"), dict) and isinstance(error["ctx"].get("error"), BaseException):
                error["ctx"] = {k: v for k, v in error["ctx"].items() if k != "error"} or None
                if error["ctx"] is None:
                    del error["ctx"]
        errors = jsonable_encoder(raw)
        for error in errors:
            if "input" in error:
                error["input"] = echoed_input(error["input"])
        return JSONResponse({"detail": errors}, status_code=422)

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

    @app.exception_handler(FieldRuleViolation)
    async def field_rule_violation(_request: Request, exc: FieldRuleViolation) -> JSONResponse:
        plain = exc.value is None or isinstance(exc.value, str | int | list | dict)  # lists of what the caller gave
        value = exc.value if plain else str(exc.value)
        error = {"type": exc.code, "loc": ["body", *exc.loc], "msg": str(exc), "input": echoed_input(value)}
        return JSONResponse({"detail": [error], "code": exc.code}, status_code=422)


def operations_router(
    service: str,
    ready_checks: dict[str, ReadyCheck],
    *,
    advisory_checks: dict[str, ReadyCheck] | None = None,
    alive: Callable[[], bool] | None = None,
) -> APIRouter:
    """``/health/live``, ``/health/ready`` (every check of ``ready_checks`` answers True) and ``/metrics``
    (the process's default Prometheus registry): every API's, and the worker roles' own listener
    (:mod:`shared.runtime`), whose ``alive`` says whether its role loops still run (503 once one has ended);
    without it, answering is alive. ``advisory_checks`` are reported in ``checks`` (and named in ``advisory``)
    but do not make the process unready: an API keeps serving while Kafka is away (commands wait in the
    outbox), and a load balancer that routes by readiness must not take it out of service for that."""
    advisory = advisory_checks or {}
    health = APIRouter(tags=["operations"])

    @health.get("/health/live", summary="Liveness: the process answers")
    async def live(response: Response) -> dict[str, str]:
        if alive is not None and not alive():
            response.status_code = 503
            return {"status": "stopped", "service": service}
        return {"status": "ok", "service": service}

    @health.get("/health/ready", summary="Readiness: what serving needs answers (advisory checks reported)")
    async def ready() -> JSONResponse:
        results = {name: await check() for name, check in ready_checks.items()}
        ok = all(results.values())
        results |= {name: await check() for name, check in advisory.items()}
        body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": results, "service": service}
        if advisory:
            body["advisory"] = sorted(advisory)
        return JSONResponse(body, status_code=200 if ok else 503)

    @health.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return health


def _lifespan(inner: Any, engine: AsyncEngine | None, settings: ApiSettings) -> Any:
    """The app's lifespan: the caller's (if any), plus the periodic purge of old idempotency keys."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        stop = asyncio.Event()
        purger = None
        if engine is not None:
            retention = timedelta(hours=settings.idempotency_retention_hours)
            purger = asyncio.create_task(purge_periodically(engine, retention, stop))
        try:
            if inner is None:
                yield None
            else:
                async with inner(app) as state:
                    yield state
        finally:
            stop.set()
            if purger is not None:
                await purger

    return lifespan


def _document_guarantees(app: FastAPI, service: str, public_paths: Iterable[str]) -> None:
    """OpenAPI: the bearer scheme and scope per operation, Idempotency-Key on POST, 401/403/503, 422 on every
    operation needing a token (an undeclared query parameter), and 404 on operations addressing one resource by id."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "a token from TIERSTREAM_API_TOKENS with the operation's scope (see docs/api.md)",
        }
        refused_query = _refused_query_response(schema)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                public = is_public(path, public_paths)
                _document_operation(operation, service, method, public=public)
                if not public:  # an operation without parameters still refuses a query string (input guard)
                    operation.setdefault("responses", {}).setdefault("422", refused_query)
                if "{" in path:  # an operation on one resource: an unknown id answers 404 (NotFound)
                    operation.setdefault("responses", {}).setdefault(
                        "404", {"description": "no such resource (the body's detail names it)"}
                    )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _refused_query_response(schema: dict[str, Any]) -> dict[str, Any]:
    """The 422 of an operation FastAPI documents none for (it takes no parameter and no body): a query
    parameter it does not declare. In FastAPI's error shape when the document defines it."""
    response: dict[str, Any] = {"description": "a query parameter the operation does not declare (docs/api.md)"}
    if "HTTPValidationError" in schema.get("components", {}).get("schemas", {}):
        ref = {"$ref": "#/components/schemas/HTTPValidationError"}
        response["content"] = {"application/json": {"schema": ref}}
    return response


def _document_operation(operation: dict[str, Any], service: str, method: str, *, public: bool) -> None:
    if public:
        operation["security"] = []
        return
    scope = required_scope(service, method)
    operation["security"] = [{SECURITY_SCHEME: [scope]}]
    operation["description"] = (operation.get("description", "") + f"\n\nRequires the scope `{scope}`.").strip()
    responses = operation.setdefault("responses", {})
    responses.setdefault("401", {"description": "missing or invalid bearer token"})
    responses.setdefault("403", {"description": f"the token lacks the scope {scope}"})
    responses.setdefault("503", {"description": "the database is unavailable; retry after Retry-After seconds"})
    if method.lower() == "post":
        operation.setdefault("parameters", []).append(
            {
                "name": idempotency.HEADER,
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH},
                "description": "retries with the same key and body replay the first answer "
                "(header Idempotency-Replayed: true) and change nothing",
            }
        )
        responses.setdefault("409", {"description": "version conflict, rule violated, or the key is in flight"})


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

#: ``offset`` of a paginated list: where the page starts. Bounded, so a huge value is a 422 naming the
#: parameter instead of an integer overflow in the database (a list that long is paged by filters).
MAX_OFFSET = 10_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip before the page")]


class RequestBody(BaseModel):
    """Base of every request body of the write APIs: a field the body does not define is a 422
    (``extra_forbidden``) naming it, never silently dropped — a typo such as ``placedAt`` would otherwise
    date an order "now", an unknown ``discount`` on a line would vanish."""

    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    # blank: nothing but white space, invisible format characters (zero-width space, BOM, …) and controls;
    # stops at the first visible character, so ordinary text costs one or two steps
    if value and all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in value):
        raise PydanticCustomError("string_blank", "String should hold more than whitespace")
    return value


#: A text field that must hold more than white space and invisible characters (422 ``string_blank``): ``Annotated[str, Field(...), NotBlank]``.
NotBlank = AfterValidator(_not_blank)
