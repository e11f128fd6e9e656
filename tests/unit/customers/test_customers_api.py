"""The customers HTTP API in-process (httpx + ASGI): bodies, paths and queries it refuses with a 422 naming
the field before any handler runs (so no database is needed: the engine is never connected to)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from customers.bootstrap import wire
from customers.config import CustomersSettings
from customers.entrypoints.api import build_api
from shared.db.engine import create_engine
from shared.events.topics import Topics
from shared.runtime import Container

pytestmark = pytest.mark.unit

AUTH = {"Authorization": "Bearer dev-admin"}
CUSTOMER = {"customer_id": "c-1", "company_name": "Acme Trading", "region": "East"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    engine = create_engine("postgresql://nobody:nothing@127.0.0.1:9/none")
    container = Container(settings=CustomersSettings(), engine=engine, topics=Topics("t."))
    wire(container)
    transport = httpx.ASGITransport(app=build_api(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://customers", headers=AUTH) as client:
        yield client
    await engine.dispose()


def errors_of(response: httpx.Response) -> dict[tuple[Any, ...], str]:
    assert response.status_code == 422, response.text
    return {tuple(e["loc"]): e["type"] for e in response.json()["detail"]}


@pytest.mark.parametrize("field", ["company_name", "region", "industry"])
async def test_blank_text_on_registration_is_a_422_naming_the_field(client: httpx.AsyncClient, field: str) -> None:
    errors = errors_of(await client.post("/customers", json={**CUSTOMER, field: "   "}))

    assert errors == {("body", field): "string_blank"}


async def test_a_profile_patch_with_a_blank_region_is_a_422(client: httpx.AsyncClient) -> None:
    assert errors_of(await client.patch("/customers/c-1/profile", json={"region": "  "})) == {
        ("body", "region"): "string_blank"
    }


async def test_clearing_company_name_and_region_names_both(client: httpx.AsyncClient) -> None:
    response = await client.patch("/customers/c-1/profile", json={"company_name": None, "region": None})

    assert errors_of(response) == {("body", "company_name"): "not_clearable", ("body", "region"): "not_clearable"}
    assert "company_name can be changed but not cleared" in response.text


async def test_a_founding_day_or_birthday_in_the_future_is_a_422(client: httpx.AsyncClient) -> None:
    registered = await client.post("/customers", json={**CUSTOMER, "founded_on": "2999-01-01"})
    patched = await client.patch("/customers/c-1/profile", json={"founded_on": "2999-01-01"})
    contact = await client.post(
        "/customers/c-1/contacts", json={"role": "purchasing", "name": "Li", "birthday": "2999-01-01"}
    )

    assert errors_of(registered) == {("body", "founded_on"): "date_in_the_future"}
    assert errors_of(patched) == {("body", "founded_on"): "date_in_the_future"}
    assert errors_of(contact) == {("body", "birthday"): "date_in_the_future"}


@pytest.mark.parametrize("days", [True, "30", 30.0])
async def test_payment_days_must_be_a_json_integer(client: httpx.AsyncClient, days: Any) -> None:
    body = {"credit_limit": {"amount": "1000", "currency": "CNY"}, "payment_days": days, "rating": "A"}

    assert errors_of(await client.put("/customers/c-1/credit-terms", json=body)) == {
        ("body", "payment_days"): "int_type"
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "unknown"),
    [
        ("POST", "/customers", {**CUSTOMER, "companyName": "x"}, "companyName"),
        ("POST", "/customers/c-1/contacts", {"role": "purchasing", "name": "Li", "title": "Mr"}, "title"),
        ("POST", "/customers/c-1/deactivation", {"reason": "closed", "by": "op"}, "by"),
        ("POST", "/customers/c-1/stage", {"stage": "lead", "why": "x"}, "why"),
    ],
)
async def test_an_unknown_body_field_is_a_422_naming_it(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], unknown: str
) -> None:
    assert errors_of(await client.request(method, path, json=body)) == {("body", unknown): "extra_forbidden"}


@pytest.mark.parametrize(("path", "body"), [("deactivation", {"reason": " "}), ("erasure", {"requested_by": "  "})])
async def test_blank_reasons_and_operators_are_422s(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    [field] = body
    assert errors_of(await client.post(f"/customers/c-1/{path}", json=body)) == {("body", field): "string_blank"}


async def test_a_nul_anywhere_is_a_422_naming_where(client: httpx.AsyncClient) -> None:
    assert errors_of(await client.post("/customers", json={**CUSTOMER, "company_name": "A\u0000"})) == {
        ("body", "company_name"): "string_contains_nul"
    }
    deactivation = await client.post("/customers/c-1/deactivation", json={"reason": "x\u0000"})
    assert errors_of(deactivation) == {("body", "reason"): "string_contains_nul"}
    assert errors_of(await client.get("/customers/a%00b")) == {("path",): "string_contains_nul"}
    assert errors_of(await client.get("/customers?region=a%00b")) == {("query", "region"): "string_contains_nul"}


async def test_a_customer_id_in_the_path_must_be_an_identifier(client: httpx.AsyncClient) -> None:
    assert errors_of(await client.get("/customers/a%20b")) == {("path", "customer_id"): "string_pattern_mismatch"}


async def test_a_body_sent_as_text_is_a_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/customers", content=b'{"company_name": "x"}', headers={"Content-Type": "text/plain"})

    assert response.status_code == 415


async def test_personal_data_in_a_contact_removal_reason_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.delete(
        "/customers/c-1/contacts/k-1", params={"reason": "Zhang left, mail zhang@example.com"}
    )

    assert errors_of(response) == {("query", "reason"): "value_error"}


async def test_an_e_mail_address_as_the_operator_requesting_an_erasure_is_a_422(client: httpx.AsyncClient) -> None:
    # QA round 2: it was kept in the permanent CustomerPersonalDataErased event
    response = await client.post("/customers/c-1/erasure", json={"requested_by": "j.doe@example.com"})

    assert errors_of(response) == {("body", "requested_by"): "value_error"}
