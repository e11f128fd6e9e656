"""What ``create_app`` does with the routers it is given and the ETags routes set themselves (no database)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Response

from shared.api import create_app
from shared.settings import ApiSettings

pytestmark = pytest.mark.unit

ADMIN = {"Authorization": "Bearer dev-admin"}


def things_router() -> APIRouter:
    router = APIRouter(prefix="/things", tags=["things"], responses={418: {"description": "a teapot"}})

    @router.get("/{thing_id}", summary="One thing")
    async def read(thing_id: str) -> dict[str, Any]:
        return {"thing_id": thing_id, "version": 3}

    @router.post("", status_code=201, summary="Make a thing")
    async def make(response: Response) -> dict[str, Any]:
        response.headers["ETag"] = '"7"'  # the route knows its version better than the body does
        return {"thing_id": "t-1", "version": 1}

    return router


def app_with(*routers: APIRouter, **fastapi_kwargs: Any) -> FastAPI:
    return create_app(
        service="things",
        title="t",
        description="d",
        routers=list(routers),
        ready_checks={},
        settings=ApiSettings(),
        **fastapi_kwargs,
    )


async def call(app: FastAPI, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        return await client.request(method, path, headers=ADMIN)


async def test_a_routers_routes_are_served_and_documented_as_include_router_documents_them() -> None:
    app = app_with(things_router())
    reference = FastAPI()
    reference.include_router(things_router())

    assert (await call(app, "GET", "/things/t-9")).json() == {"thing_id": "t-9", "version": 3}
    documented, expected = app.openapi()["paths"], reference.openapi()["paths"]
    assert set(documented) - {"/health/live", "/health/ready"} == set(expected)
    for path, operations in expected.items():
        for method, operation in operations.items():
            ours = documented[path][method]
            for field in ("tags", "summary", "operationId"):
                assert ours[field] == operation[field], (path, method, field)
            assert set(operation["responses"]) <= set(ours["responses"]), (path, method)


async def test_a_router_with_startup_handlers_of_its_own_still_runs_them() -> None:
    started: list[str] = []
    router = things_router()
    router.add_event_handler("startup", lambda: started.append("things"))
    app = app_with(router)

    async with app.router.lifespan_context(app):
        assert started == ["things"]
    assert (await call(app, "GET", "/things/t-1")).status_code == 200


async def test_dependencies_given_to_the_app_still_guard_every_route() -> None:
    async def closed() -> None:
        raise HTTPException(status_code=423, detail="closed")

    app = app_with(things_router(), dependencies=[Depends(closed)])

    assert (await call(app, "GET", "/things/t-1")).status_code == 423


async def test_an_etag_a_route_set_goes_out_as_it_is_and_alone() -> None:
    response = await call(app_with(things_router()), "POST", "/things")

    assert response.status_code == 201
    assert response.headers.get_list("ETag") == ['"7"']


async def test_an_answer_without_an_etag_still_gets_its_version_as_one() -> None:
    response = await call(app_with(things_router()), "GET", "/things/t-1")

    assert response.headers.get_list("ETag") == ['"3"']
