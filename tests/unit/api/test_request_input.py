"""What every API refuses before a route runs, and how it echoes invalid input (``create_app``, no database):
NUL characters anywhere → 422 naming where; bodies that are not JSON → 415; unknown body fields → 422;
blank text → 422; a validation error's ``input`` cut short."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query
from pydantic import Field

from shared.api import Identifier, NotBlank, RequestBody, create_app
from shared.events.vocabulary import Reason
from shared.settings import ApiSettings

pytestmark = pytest.mark.unit

ADMIN = {"Authorization": "Bearer dev-admin"}


class NoteIn(RequestBody):
    comment: Annotated[str, Field(min_length=1, max_length=10_000_000), NotBlank]
    reason: Reason | None = None  # the contract's: a validator that raises ValueError (personal data)
    tags: list[str] = Field(default_factory=list)
    count: int = Field(default=0, strict=True)


def notes_app(seen: list[Any]) -> FastAPI:
    router = APIRouter(prefix="/notes")

    @router.get("/{note_id}")
    async def read(note_id: Identifier, region: Annotated[str | None, Query()] = None) -> dict[str, Any]:
        seen.append((note_id, region))
        return {"note_id": note_id}

    @router.post("", status_code=201)
    async def write(body: NoteIn) -> dict[str, Any]:
        seen.append(body)
        return body.model_dump()

    @router.post("/{note_id}/touch")
    async def touch(note_id: Identifier) -> dict[str, Any]:
        return {"note_id": note_id}

    return create_app(
        service="notes", title="t", description="d", routers=[router], ready_checks={}, settings=ApiSettings()
    )


@pytest.fixture
def seen() -> list[Any]:
    return []


@pytest.fixture
async def client(seen: list[Any]) -> Any:
    transport = httpx.ASGITransport(app=notes_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=ADMIN) as client:
        yield client


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    return error


async def test_a_nul_in_a_body_string_is_a_422_naming_the_field_and_no_route_runs(
    client: httpx.AsyncClient, seen: list[Any]
) -> None:
    error = error_of(await client.post("/notes", json={"comment": "a\u0000b"}))
    assert (error["type"], error["loc"], error["input"]) == ("string_contains_nul", ["body", "comment"], "a\u0000b")
    assert "NUL" in error["msg"]

    nested = error_of(await client.post("/notes", json={"comment": "ok", "tags": ["x", "y\u0000"]}))
    assert nested["loc"] == ["body", "tags", 1]
    assert error_of(await client.post("/notes", json={"comment": "ok", "a\u0000": 1}))["loc"] == ["body", "a\u0000"]
    assert seen == []


@pytest.mark.parametrize("depth", [900, 5_000])
async def test_a_nul_deep_in_a_nested_body_is_a_4xx_never_a_500(client: httpx.AsyncClient, depth: int) -> None:
    # QA: 980 levels (parsed, then searched recursively) and 100,000 (not parseable) both answered 500
    body = "[" * depth + '"\\u0000"' + "]" * depth
    response = await client.post("/notes", content=body, headers={"Content-Type": "application/json"})

    if depth == 900:  # parseable: the NUL is named, the way to it cut short
        error = error_of(response)
        assert error["loc"][:2] == ["body", 0] and error["loc"][-1] == "…" and len(error["loc"]) == 21
    else:  # too deep for any JSON parser here: refused without a 500 (the route's parse error)
        assert 400 <= response.status_code < 500, response.text


async def test_an_escaped_backslash_before_u0000_is_not_a_nul(client: httpx.AsyncClient) -> None:
    response = await client.post("/notes", json={"comment": "C:\\u0000"})

    assert (response.status_code, response.json()["comment"]) == (201, "C:\\u0000")


async def test_a_nul_in_the_path_or_a_query_parameter_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    assert error_of(await client.get("/notes/a%00b"))["loc"] == ["path"]
    assert error_of(await client.get("/notes/n-1?region=a%00b"))["loc"] == ["query", "region"]
    assert (await client.get("/notes/n-1?region=a%2500b")).status_code == 200  # a literal "%00", no NUL


async def test_a_path_id_that_is_no_identifier_is_a_422(client: httpx.AsyncClient) -> None:
    assert error_of(await client.get("/notes/a%20b"))["loc"] == ["path", "note_id"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded", None])
async def test_a_body_that_is_not_sent_as_json_is_a_415(client: httpx.AsyncClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}

    response = await client.post("/notes", content=b'{"comment": "x"}', headers=headers)

    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["detail"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
async def test_json_media_types_are_accepted(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post("/notes", content=b'{"comment": "x"}', headers={"Content-Type": content_type})

    assert response.status_code == 201


async def test_a_post_without_a_body_needs_no_content_type(client: httpx.AsyncClient) -> None:
    assert (await client.post("/notes/n-1/touch")).status_code == 200
    assert (await client.post("/notes/n-1/touch", headers={"Content-Type": "text/plain"})).status_code == 200


async def test_an_unknown_body_field_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    error = error_of(await client.post("/notes", json={"comment": "x", "commnet": "typo"}))

    assert (error["type"], error["loc"]) == ("extra_forbidden", ["body", "commnet"])


@pytest.mark.parametrize("count", [True, "3", 1.0])
async def test_a_strict_integer_refuses_booleans_strings_and_floats(client: httpx.AsyncClient, count: Any) -> None:
    assert error_of(await client.post("/notes", json={"comment": "x", "count": count}))["loc"] == ["body", "count"]


@pytest.mark.parametrize("blank", ["  \t ", "\u200b\u200b", "\ufeff", "\u0006\u001e\u007f", " \u00a0\u2003"])
async def test_blank_text_is_a_422_naming_the_field(client: httpx.AsyncClient, blank: str) -> None:
    # white space, zero-width and format characters, controls: nothing a reader would see (QA round 2)
    error = error_of(await client.post("/notes", json={"comment": blank}))

    assert (error["type"], error["loc"]) == ("string_blank", ["body", "comment"])


async def test_text_with_something_visible_around_invisible_characters_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.post("/notes", json={"comment": "\u200bok\u200b"})

    assert response.status_code == 201, response.text


async def test_a_validation_error_echoes_long_input_cut_short(client: httpx.AsyncClient) -> None:
    huge = "x" * 5_000_000
    response = await client.post("/notes", json={"comment": huge, "extra": huge})

    assert response.status_code == 422
    assert len(response.content) < 2_000
    by_loc = {tuple(e["loc"]): e["input"] for e in response.json()["detail"]}
    assert by_loc[("body", "extra")].startswith("x" * 200 + "… (5000000 characters")
    missing = error_of(await client.post("/notes", json={"tags": ["t"] * 50}))
    assert missing["type"] == "missing"
    assert missing["input"]["tags"][:20] == ["t"] * 20
    assert missing["input"]["tags"][20] == "… 30 more items, cut"


async def test_a_validator_s_error_is_told_in_msg_without_an_empty_ctx(client: httpx.AsyncClient) -> None:
    # QA round 2: a ValueError raised by a validator came back as "ctx": {"error": {}}
    error = error_of(await client.post("/notes", json={"comment": "ok", "reason": "mail me: li@example.com"}))

    assert "ctx" not in error and "e-mail" in error["msg"]
