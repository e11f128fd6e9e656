"""Bearer tokens and scopes, applied once by ``create_app`` to every service's API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from pydantic import ValidationError

from orders.config import OrdersSettings
from shared.api import create_app
from shared.auth import Caller, TokenRegistry, required_scope
from shared.settings import DEV_API_TOKENS, ApiSettings

pytestmark = pytest.mark.unit

TOKENS = {
    "tok-erp-0001": ["orders:write", "customers:read"],
    "tok-dash-0001": ["*:read"],
    "tok-root-0001": ["*"],
    "tok-write-all": ["*:write"],
}


def app_with(tokens: dict[str, list[str]] | None = None, **settings: object):  # type: ignore[no-untyped-def]
    router = APIRouter(prefix="/orders")

    @router.get("/{order_id}")
    async def read(order_id: str) -> dict[str, object]:
        return {"order_id": order_id, "version": 3}

    @router.post("", status_code=201)
    async def write() -> dict[str, object]:
        return {"order_id": "o-1", "version": 1}

    api_settings = ApiSettings(TIERSTREAM_API_TOKENS=tokens, **settings)  # type: ignore[arg-type]
    return create_app(
        service="orders", title="t", description="d", routers=[router], ready_checks={}, settings=api_settings
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_with(TOKENS))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_request_without_a_token_is_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders/o-1")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "X-Correlation-ID" in response.headers


@pytest.mark.parametrize("header", ["Bearer nope-nope-nope", "Basic dXNlcjpwdw==", "Bearer", "tok-erp-0001"])
async def test_an_unknown_token_or_another_scheme_is_401(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get("/orders/o-1", headers={"Authorization": header})
    assert response.status_code == 401
    assert "Bearer" in response.headers["WWW-Authenticate"]


async def test_a_read_scope_cannot_write_and_the_403_names_the_missing_scope(client: httpx.AsyncClient) -> None:
    assert (await client.get("/orders/o-1", headers=bearer("tok-dash-0001"))).status_code == 200
    response = await client.post("/orders", headers=bearer("tok-dash-0001"))
    assert response.status_code == 403
    assert response.json()["missing_scope"] == "orders:write"
    assert "orders:write" in response.json()["detail"]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_write_implies_read_and_wildcards_grant_every_service(client: httpx.AsyncClient) -> None:
    for token in ("tok-erp-0001", "tok-root-0001", "tok-write-all"):
        assert (await client.get("/orders/o-1", headers=bearer(token))).status_code == 200, token
        assert (await client.post("/orders", headers=bearer(token))).status_code == 201, token


async def test_health_metrics_and_docs_stay_open(client: httpx.AsyncClient) -> None:
    for path in ("/health/live", "/metrics", "/docs", "/openapi.json", "/redoc"):
        assert (await client.get(path)).status_code == 200, path


async def test_openapi_shows_the_bearer_scheme_the_scope_of_each_operation_and_the_idempotency_key(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    read = schema["paths"]["/orders/{order_id}"]["get"]
    write = schema["paths"]["/orders"]["post"]
    assert read["security"] == [{"bearerAuth": ["orders:read"]}]
    assert write["security"] == [{"bearerAuth": ["orders:write"]}]
    assert {"401", "403", "503"} <= set(write["responses"])
    assert "404" in read["responses"] and "404" not in write["responses"]  # one resource by id vs a create
    assert [p["name"] for p in write["parameters"]] == ["Idempotency-Key"]
    assert schema["paths"]["/health/live"]["get"]["security"] == []


async def test_a_json_answer_with_a_version_carries_it_as_an_etag(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders/o-1", headers=bearer("tok-erp-0001"))
    assert response.headers["ETag"] == '"3"'
    assert "ETag" not in (await client.get("/health/live")).headers


async def test_development_defaults_are_the_documented_dev_tokens() -> None:
    transport = httpx.ASGITransport(app=app_with(None, TIERSTREAM_ENV="development"))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        assert (await c.post("/orders", headers=bearer("dev-admin"))).status_code == 201
        assert (await c.get("/orders/o-1", headers=bearer("dev-dashboard"))).status_code == 200
        assert (await c.post("/orders", headers=bearer("dev-dashboard"))).status_code == 403
    assert set(DEV_API_TOKENS) == {"dev-admin", "dev-dashboard"}


def test_configured_tokens_replace_the_dev_tokens() -> None:
    registry = TokenRegistry(ApiSettings(TIERSTREAM_API_TOKENS=TOKENS).effective_api_tokens())
    with pytest.raises(Exception, match="invalid bearer token"):
        registry.authenticate("Bearer dev-admin")


def test_production_refuses_to_start_without_tokens_or_with_a_dev_token() -> None:
    real_db = {"database_url": "postgresql+asyncpg://svc:s3cret@db/orders", "TIERSTREAM_ENV": "production"}
    with pytest.raises(ValidationError, match="TIERSTREAM_API_TOKENS must be set"):
        OrdersSettings(**real_db)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="TIERSTREAM_API_TOKENS contains development tokens"):
        OrdersSettings(**real_db, TIERSTREAM_API_TOKENS={"dev-admin": ["*"], "tok-real-0001": ["*"]})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="TIERSTREAM_FAULT_INJECT"):
        OrdersSettings(**real_db, TIERSTREAM_API_TOKENS=TOKENS, TIERSTREAM_FAULT_INJECT="relay_exit_after_ack")  # type: ignore[arg-type]
    assert OrdersSettings(**real_db, TIERSTREAM_API_TOKENS=TOKENS).api_tokens == TOKENS  # type: ignore[arg-type]


def test_production_refuses_the_placeholder_tokens_of_the_env_example() -> None:
    real_db = {"database_url": "postgresql+asyncpg://svc:s3cret@db/orders", "TIERSTREAM_ENV": "production"}
    with pytest.raises(ValidationError, match="placeholder tokens"):
        OrdersSettings(**real_db, TIERSTREAM_API_TOKENS={"tok-erp-change-me": ["orders:write"]})  # type: ignore[arg-type]


def test_tokens_must_be_long_enough_and_scopes_well_formed() -> None:
    with pytest.raises(ValidationError, match="at least 8 characters"):
        ApiSettings(TIERSTREAM_API_TOKENS={"short": ["*"]})
    with pytest.raises(ValidationError, match="invalid scopes"):
        ApiSettings(TIERSTREAM_API_TOKENS={"tok-erp-0001": ["orders:admin"]})


def test_the_tokens_come_from_the_environment_as_json_under_one_unprefixed_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIERSTREAM_API_TOKENS", '{"tok-erp-0001": ["orders:write"]}')
    monkeypatch.setenv("ORDERS_API_TOKENS", '{"tok-sneaky-01": ["*"]}')
    monkeypatch.setenv("ORDERS_ENVIRONMENT", "production")
    settings = OrdersSettings()
    assert settings.api_tokens == {"tok-erp-0001": ["orders:write"]}
    assert settings.environment == "development"


@pytest.mark.parametrize(
    ("scopes", "method", "allowed"),
    [
        ({"orders:read"}, "GET", True),
        ({"orders:read"}, "HEAD", True),
        ({"orders:read"}, "DELETE", False),
        ({"orders:write"}, "PATCH", True),
        ({"customers:write"}, "GET", False),
        ({"*:read"}, "PUT", False),
        ({"*"}, "POST", True),
    ],
)
def test_scope_rules(scopes: set[str], method: str, allowed: bool) -> None:
    assert Caller("x", frozenset(scopes)).grants(required_scope("orders", method)) is allowed


async def test_the_callers_correlation_id_is_echoed_on_every_answer(client: httpx.AsyncClient) -> None:
    for headers in ({}, bearer("tok-erp-0001")):
        response = await client.get("/orders/o-1", headers={**headers, "X-Correlation-ID": "corr-42"})
        assert response.headers["X-Correlation-ID"] == "corr-42"
