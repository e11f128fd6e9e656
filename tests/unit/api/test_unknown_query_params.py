"""A query parameter the operation does not declare is a 422 naming it and what the operation accepts, on every
service's API (``create_app``'s input guard, :class:`shared.input_guard.DeclaredQueries`), never ignored; the
paths served without a token (health, metrics, docs, static pages) take any query string."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import PlainTextResponse
from prometheus_client import REGISTRY

from customers.bootstrap import wire as wire_customers
from customers.config import CustomersSettings
from customers.entrypoints.api import build_api as customers_api
from feedback.bootstrap import wire_in_memory as wire_feedback
from feedback.config import FeedbackSettings
from feedback.entrypoints.api import build_api as feedback_api
from orders.adapters.memory import InMemoryCreditLedger
from orders.bootstrap import wire as wire_orders
from orders.config import OrdersSettings
from orders.entrypoints.api import build_api as orders_api
from segmentation.bootstrap import wire as wire_segmentation
from segmentation.config import SegmentationSettings
from segmentation.entrypoints.api import build_api as segmentation_api
from shared.api import RequestBody, create_app
from shared.db.engine import create_engine
from shared.events.topics import Topics
from shared.eventsourcing.store import InMemoryEventStore
from shared.runtime import Container
from shared.settings import ApiSettings

pytestmark = pytest.mark.unit

ADMIN = {"Authorization": "Bearer dev-admin"}
#: The query parameters of GET /items, in the OpenAPI document's order: the route's own, then its
#: dependencies' depth first (the router's, the route's paging with its nested sorting).
ITEMS_ACCEPTS = "region, status, tenant, limit, offset, sort"


class ItemIn(RequestBody):
    name: str


async def trace(trace: Annotated[str | None, Query()] = None) -> str | None:
    return trace


async def tenant(tenant: Annotated[str | None, Query()] = None) -> str | None:
    return tenant


async def sorting(sort: Annotated[str, Query()] = "name") -> str:
    return sort


async def paging(
    sort: Annotated[str, Depends(sorting)], limit: Annotated[int, Query(ge=1)] = 10, offset: int = 0
) -> dict[str, Any]:
    return {"limit": limit, "offset": offset, "sort": sort}


def items_app(seen: list[Any]) -> FastAPI:
    router = APIRouter(prefix="/items", dependencies=[Depends(tenant)])

    @router.get("")
    async def list_items(
        page: Annotated[dict[str, Any], Depends(paging)],
        region: Annotated[str | None, Query()] = None,
        status_: Annotated[str | None, Query(alias="status")] = None,
    ) -> dict[str, Any]:
        seen.append({"region": region, "status": status_, **page})
        return {"items": []}

    @router.get("/tagged")
    async def tagged(tag: Annotated[list[str] | None, Query()] = None) -> dict[str, Any]:
        seen.append(tag)
        return {"tags": tag}

    @router.post("", status_code=201)
    async def add(body: ItemIn) -> dict[str, Any]:
        return body.model_dump()

    plain = APIRouter()

    @plain.post("/items/{item_id}/touch")
    async def touch(item_id: str) -> dict[str, str]:
        seen.append(item_id)
        return {"item_id": item_id}

    app = create_app(
        service="items",
        title="t",
        description="d",
        routers=[router, plain],
        ready_checks={},
        settings=ApiSettings(),
        public_paths=("/static/",),
    )

    # Added after create_app, as segmentation's dashboard is: a FastAPI route (checked) and a mount (public).
    @app.get("/late")
    async def late() -> dict[str, bool]:
        return {"late": True}

    app.mount("/static", PlainTextResponse("static file"))
    return app


@pytest.fixture
def seen() -> list[Any]:
    return []


@pytest.fixture
async def client(seen: list[Any]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=items_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=ADMIN) as client:
        yield client


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    return response.json()["detail"]


def error_of(response: httpx.Response) -> dict[str, Any]:
    [error] = errors_of(response)
    return error


async def test_a_misspelt_filter_is_a_422_naming_it_what_the_operation_accepts_and_no_route_runs(
    client: httpx.AsyncClient, seen: list[Any]
) -> None:
    error = error_of(await client.get("/items?regoin=East&limit=5"))

    assert error == {
        "type": "extra_forbidden",
        "loc": ["query", "regoin"],
        "msg": f"unknown query parameter (did you mean 'region'?); this operation accepts: {ITEMS_ACCEPTS}",
        "input": "East",
    }
    assert seen == []


async def test_the_accepted_names_are_those_the_openapi_document_lists_in_its_order(
    client: httpx.AsyncClient,
) -> None:
    operation = (await client.get("/openapi.json")).json()["paths"]["/items"]["get"]
    documented = [p["name"] for p in operation["parameters"] if p["in"] == "query"]

    assert ", ".join(documented) == ITEMS_ACCEPTS


async def test_the_error_has_the_shape_of_an_unknown_body_field(client: httpx.AsyncClient) -> None:
    body_error = error_of(await client.post("/items", json={"name": "a", "colour": "red"}))
    query_error = error_of(await client.post("/items?colour=red", json={"name": "a"}))

    assert (query_error["type"], query_error.keys()) == (body_error["type"], body_error.keys())
    assert (query_error["loc"], query_error["input"]) == (["query", "colour"], "red")


async def test_parameters_declared_by_the_route_its_dependencies_and_its_router_are_accepted(
    client: httpx.AsyncClient, seen: list[Any]
) -> None:
    query = "region=East&status=open&tenant=acme&limit=5&offset=10&sort=price"

    response = await client.get(f"/items?{query}")

    assert response.status_code == 200, response.text
    assert seen == [{"region": "East", "status": "open", "limit": 5, "offset": 10, "sort": "price"}]


async def test_a_parameter_of_an_app_dependency_is_accepted_on_every_operation() -> None:
    router = APIRouter()

    @router.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    app = create_app(
        service="items",
        title="t",
        description="d",
        routers=[router],
        ready_checks={},
        settings=ApiSettings(),
        dependencies=[Depends(trace)],
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", headers=ADMIN) as api:
        accepted = await api.get("/ping?trace=t-1")
        refused = await api.get("/ping?trail=t-1")

    assert accepted.status_code == 200, accepted.text
    assert error_of(refused)["msg"] == "unknown query parameter (did you mean 'trace'?); this operation accepts: trace"


async def test_a_parameter_is_known_by_its_alias_not_its_python_name(client: httpx.AsyncClient) -> None:
    error = error_of(await client.get("/items?status_=open"))

    assert (error["loc"], error["msg"].partition(";")[0]) == (
        ["query", "status_"],
        "unknown query parameter (did you mean 'status'?)",
    )


@pytest.mark.parametrize("url", ["/items", "/items?"])
async def test_a_request_without_a_query_string_is_served(client: httpx.AsyncClient, url: str) -> None:
    assert (await client.get(url)).status_code == 200


async def test_an_operation_without_query_parameters_refuses_any(client: httpx.AsyncClient, seen: list[Any]) -> None:
    error = error_of(await client.post("/items/i-1/touch?force=1"))

    assert error["msg"] == "unknown query parameter; this operation takes no query parameters"
    assert (error["loc"], seen) == (["query", "force"], [])
    assert (await client.post("/items/i-1/touch")).status_code == 200


async def test_names_are_exact_so_a_capitalised_one_is_unknown(client: httpx.AsyncClient) -> None:
    error = error_of(await client.get("/items?REGION=East"))

    assert error["loc"] == ["query", "REGION"]
    assert error["msg"].startswith("unknown query parameter (did you mean 'region'?)")


async def test_a_single_valued_parameter_given_twice_is_a_422_echoing_both_values(
    client: httpx.AsyncClient, seen: list[Any]
) -> None:
    error = error_of(await client.get("/items?region=East&region=West"))

    assert error == {
        "type": "repeated_parameter",
        "loc": ["query", "region"],
        "msg": "given 2 times; this query parameter takes one value",
        "input": ["East", "West"],
    }
    assert seen == []


async def test_a_list_parameter_takes_repeats(client: httpx.AsyncClient, seen: list[Any]) -> None:
    response = await client.get("/items/tagged?tag=a&tag=b")

    assert (response.status_code, seen) == (200, [["a", "b"]])


async def test_every_offending_name_gets_an_error_at_most_twenty(client: httpx.AsyncClient) -> None:
    two = errors_of(await client.get("/items?a=1&region=x&b=2&a=3"))
    many = errors_of(await client.get("/items?" + "&".join(f"p{n}=1" for n in range(500))))

    assert [(e["loc"][1], e["input"]) for e in two] == [("a", ["1", "3"]), ("b", "2")]
    assert [e["loc"][1] for e in many] == [f"p{n}" for n in range(20)]


async def test_a_route_added_after_create_app_is_checked_too(client: httpx.AsyncClient) -> None:
    assert error_of(await client.get("/late?x=1"))["loc"] == ["query", "x"]


@pytest.mark.parametrize(
    "url",
    [
        "/health/live?probe=k8s",
        "/health/ready?probe=k8s",
        "/metrics?name[]=tierstream_http_requests_total",
        "/openapi.json?v=2",
        "/docs?v=2",
        "/redoc?v=2",
        "/docs/oauth2-redirect?code=c-1&state=s-1",
        "/static/app.js?v=2",
    ],
)
async def test_paths_served_without_a_token_take_any_query_string(url: str, seen: list[Any]) -> None:
    transport = httpx.ASGITransport(app=items_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as anonymous:
        response = await anonymous.get(url)

    assert response.status_code == 200, response.text


async def test_unknown_paths_and_methods_answer_as_before(client: httpx.AsyncClient) -> None:
    assert (await client.get("/nowhere?x=1")).status_code == 404
    assert (await client.delete("/items?x=1")).status_code == 405


async def test_a_caller_without_a_token_gets_401_not_the_parameter_names(seen: list[Any]) -> None:
    transport = httpx.ASGITransport(app=items_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as anonymous:
        response = await anonymous.get("/items?regoin=East")

    assert response.status_code == 401
    assert "region" not in response.text


async def test_an_operation_without_parameters_documents_the_422(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()

    refused = document["paths"]["/late"]["get"]["responses"]["422"]
    assert refused["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/HTTPValidationError"}
    assert "422" not in document["paths"]["/health/live"]["get"]["responses"]  # public: takes any query string


# The services' own apps, over fakes (the engine is never connected to: the refusal comes before any route).

NOWHERE = "postgresql://nobody:nothing@127.0.0.1:9/none"


def customers_app(container: Container[Any]) -> FastAPI:
    wire_customers(container)
    return customers_api(container)


def orders_app(container: Container[Any]) -> FastAPI:
    wire_orders(container, store=InMemoryEventStore(), ledger=InMemoryCreditLedger())
    return orders_api(container)


def feedback_app(container: Container[Any]) -> FastAPI:
    wire_feedback(container)
    return feedback_api(container)


def segmentation_app(container: Container[Any]) -> FastAPI:
    wire_segmentation(container)
    return segmentation_api(container)


#: service → its settings, its app over fakes, a list route with a misspelt filter, and the refusal's message.
SERVICES: dict[str, tuple[Callable[[], Any], Callable[[Container[Any]], FastAPI], str, str]] = {
    "customers": (
        CustomersSettings,
        customers_app,
        "/customers?regoin=East",
        "unknown query parameter (did you mean 'region'?); "
        "this operation accepts: region, stage, active, limit, offset",
    ),
    "orders": (
        OrdersSettings,
        orders_app,
        "/customers/c-1/orders?regoin=East",
        "unknown query parameter; this operation accepts: limit, offset",
    ),
    "feedback": (
        FeedbackSettings,
        feedback_app,
        "/customers/c-1/complaints?regoin=East",
        "unknown query parameter; this operation accepts: status, limit, offset",
    ),
    "segmentation": (
        SegmentationSettings,
        segmentation_app,
        "/customers?regoin=East",
        "unknown query parameter (did you mean 'region'?); this operation accepts: "
        "tier, segment, status, risk_band, region, r_score, f_score, sort, limit, offset",
    ),
}


@pytest.fixture(params=sorted(SERVICES))
async def service(request: pytest.FixtureRequest) -> AsyncIterator[tuple[FastAPI, str, str]]:
    settings, build, url, msg = SERVICES[request.param]
    engine = create_engine(NOWHERE)
    yield build(Container(settings=settings(), engine=engine, topics=Topics("t."))), url, msg
    await engine.dispose()


async def test_each_service_refuses_a_misspelt_filter_on_its_list_route(service: tuple[FastAPI, str, str]) -> None:
    app, url, msg = service
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s", headers=ADMIN) as api:
        error = error_of(await api.get(url))

    assert error == {"type": "extra_forbidden", "loc": ["query", "regoin"], "msg": msg, "input": "East"}


@pytest.mark.parametrize(
    ("url", "status"), [("/dashboard?v=2", 307), ("/dashboard/?v=2", 200), ("/dashboard/js/app.js?v=2", 200)]
)
async def test_the_segmentation_dashboard_pages_take_any_query_string(url: str, status: int) -> None:
    engine = create_engine(NOWHERE)
    app = segmentation_app(Container(settings=SegmentationSettings(), engine=engine, topics=Topics("t.")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as browser:
        response = await browser.get(url)
    await engine.dispose()

    assert response.status_code == status, response.text


async def test_a_refused_query_is_counted_under_its_operation_not_as_unmatched(client: httpx.AsyncClient) -> None:
    labels = {"service": "items", "method": "GET", "route": "/items", "status": "422"}
    before = REGISTRY.get_sample_value("tierstream_http_requests_total", labels) or 0

    assert (await client.get("/items?regoin=East")).status_code == 422

    assert REGISTRY.get_sample_value("tierstream_http_requests_total", labels) == before + 1
