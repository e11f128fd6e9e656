"""The feedback HTTP API in-process (httpx + ASGI) over the in-memory fakes: field errors, the closed
loop with If-Match, listings, surveys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from feedback_fakes import Service

from feedback.entrypoints.api import build_api

pytestmark = pytest.mark.unit

AUTH = {"Authorization": "Bearer dev-admin"}


@pytest.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    app = build_api(service.container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://feedback", headers=AUTH) as client:
        yield client


def fields(response: httpx.Response) -> set[tuple]:
    assert response.status_code == 422, response.text
    return {tuple(e["loc"]) for e in response.json()["detail"]}


async def file(client: httpx.AsyncClient, complaint_id: str, customer_id: str = "c-1", **extra: object) -> dict:
    body = {"customer_id": customer_id, "category": "delivery", "severity": "high", "summary": "late truck"}
    response = await client.post("/complaints", json={**body, "complaint_id": complaint_id, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def test_an_invalid_complaint_gets_422_naming_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/complaints", json={"customer_id": "c 1", "category": "weather", "severity": "meh", "order_id": ""}
    )
    assert fields(response) >= {
        ("body", "customer_id"),
        ("body", "category"),
        ("body", "severity"),
        ("body", "summary"),
        ("body", "order_id"),
    }


async def test_invalid_command_bodies_get_422(client: httpx.AsyncClient) -> None:
    await file(client, "k-1")
    assert fields(await client.post("/complaints/k-1/resolution", json={"resolution": ""})) == {("body", "resolution")}
    assert fields(await client.post("/complaints/k-1/reopening", json={})) == {("body", "reason")}
    response = await client.post("/complaints/k-1/acknowledgement", json={}, headers={"If-Match": "two"})
    assert fields(response) == {("header", "if-match")}


async def test_the_closed_loop_through_the_api(client: httpx.AsyncClient, service: Service) -> None:
    filed = await file(client, "k-1", order_id="o-7")
    assert filed["status"] == "open"
    assert (filed["acknowledge_by"], filed["resolve_by"]) == ("2026-05-04T12:00:00Z", "2026-05-07T08:00:00Z")
    assert filed["next_escalation_at"] == filed["acknowledge_by"]

    response = await client.post(
        "/complaints/k-1/acknowledgement", json={"acknowledged_by": "agent-7"}, headers={"If-Match": '"1"'}
    )
    assert (response.status_code, response.json()["status"], response.json()["version"]) == (200, "acknowledged", 2)
    assert response.headers["ETag"] == '"2"'
    stale = await client.post("/complaints/k-1/resolution", json={"resolution": "x"}, headers={"If-Match": '"1"'})
    assert (stale.status_code, stale.json()["current_version"]) == (409, 2)

    resolved = await client.post(
        "/complaints/k-1/resolution", json={"resolution": "replacement"}, headers={"If-Match": '"2"'}
    )
    assert resolved.json()["status"] == "resolved"
    service.clock.advance(days=1)
    reopened = (await client.post("/complaints/k-1/reopening", json={"reason": "still broken"})).json()
    assert (reopened["status"], reopened["reopen_count"]) == ("reopened", 1)
    assert reopened["resolve_by"] == "2026-05-08T08:00:00Z"  # reopened_at + 3 days (high)
    await client.post("/complaints/k-1/resolution", json={"resolution": "second replacement"})
    closed = (await client.post("/complaints/k-1/confirmation")).json()
    assert (closed["status"], closed["version"], closed["next_escalation_at"]) == ("closed", 6, None)

    assert (await client.get("/complaints/k-1")).json() == closed
    events = (await client.get("/complaints/k-1/events")).json()
    assert [e["event_type"] for e in events] == [
        "ComplaintFiled",
        "ComplaintAcknowledged",
        "ComplaintResolved",
        "ComplaintReopened",
        "ComplaintResolved",
        "ComplaintConfirmed",
    ]
    assert events[3]["data"]["resolve_by"] == "2026-05-08T08:00:00Z"  # stored, so replays agree


async def test_a_step_out_of_turn_is_a_409_with_the_rule(client: httpx.AsyncClient) -> None:
    await file(client, "k-1")
    response = await client.post("/complaints/k-1/confirmation")
    assert (response.status_code, response.json()["code"]) == (409, "rule_violated")
    assert "cannot confirm" in response.json()["detail"]


async def test_filing_an_existing_complaint_id_again_is_a_409(client: httpx.AsyncClient) -> None:
    await file(client, "k-1")
    body = {"customer_id": "c-1", "category": "price", "severity": "low", "summary": "x", "complaint_id": "k-1"}
    assert (await client.post("/complaints", json=body)).status_code == 409


async def test_unknown_complaints_and_surveys_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/complaints/nope")).status_code == 404
    assert (await client.get("/complaints/nope/events")).status_code == 404
    assert (await client.post("/complaints/nope/acknowledgement", json={})).status_code == 404
    assert (await client.get("/surveys/nope")).status_code == 404


async def test_a_customers_complaints_are_listed_newest_first_with_the_total(
    client: httpx.AsyncClient, service: Service
) -> None:
    for n in range(3):
        await file(client, f"k-{n}")
        service.clock.advance(minutes=1)
    await file(client, "other", customer_id="c-2")
    await client.post("/complaints/k-1/resolution", json={"resolution": "refund"})

    page = (await client.get("/customers/c-1/complaints", params={"limit": 2})).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    assert [c["complaint_id"] for c in page["items"]] == ["k-2", "k-1"]
    page = (await client.get("/customers/c-1/complaints", params={"limit": 2, "offset": 2})).json()
    assert [c["complaint_id"] for c in page["items"]] == ["k-0"]
    resolved = (await client.get("/customers/c-1/complaints", params={"status": "resolved"})).json()
    assert (resolved["total"], resolved["items"][0]["complaint_id"]) == (1, "k-1")
    assert (await client.get("/customers/c-9/complaints")).json() == {"items": [], "total": 0, "limit": 50, "offset": 0}


async def test_listing_parameters_are_validated(client: httpx.AsyncClient) -> None:
    response = await client.get("/customers/c-1/complaints", params={"status": "lost", "limit": 0, "offset": -1})
    assert fields(response) == {("query", "status"), ("query", "limit"), ("query", "offset")}


async def test_an_escalation_shows_on_the_complaint(client: httpx.AsyncClient, service: Service) -> None:
    await file(client, "k-1")
    service.clock.advance(hours=5)
    await service.sweep.run_once()
    complaint = (await client.get("/complaints/k-1")).json()
    assert (complaint["escalations"], complaint["status"], complaint["version"]) == (1, "open", 2)
    assert complaint["next_escalation_at"] == complaint["resolve_by"]


# -- surveys ------------------------------------------------------------------------------------------
async def test_a_survey_answer_is_recorded_and_readable(client: httpx.AsyncClient) -> None:
    body = {"customer_id": "c-1", "survey_id": "s-1", "csat": 2, "nps": 5, "comment": "slow", "order_id": "o-1"}
    created = await client.post("/surveys", json=body)
    assert created.status_code == 201, created.text
    survey = created.json()
    assert (survey["nps_group"], survey["answered_at"], survey["version"]) == ("detractor", "2026-05-04T08:00:00Z", 1)
    assert (await client.get("/surveys/s-1")).json() == survey
    assert [e["event_type"] for e in (await client.get("/surveys/s-1/events")).json()] == ["SurveyAnswered"]
    assert (await client.post("/surveys", json=body)).status_code == 409


async def test_one_score_is_enough_for_a_survey(client: httpx.AsyncClient) -> None:
    response = await client.post("/surveys", json={"customer_id": "c-1", "nps": 10})
    assert (response.status_code, response.json()["csat"], response.json()["nps_group"]) == (201, None, "promoter")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"csat": 0, "nps": 11}, {("body", "csat"), ("body", "nps")}),
        ({"csat": 6}, {("body", "csat")}),
        ({"nps": -1}, {("body", "nps")}),
        ({"csat": "great"}, {("body", "csat")}),
        ({}, {("body", "csat"), ("body", "nps")}),
        ({"csat": 3, "comment": ""}, {("body", "comment")}),
        ({"csat": 3, "answered_at": "2026-05-04T08:00:00"}, {("body", "answered_at")}),
    ],
    ids=[
        "both-out-of-range",
        "csat-high",
        "nps-negative",
        "csat-not-a-number",
        "no-score",
        "empty-comment",
        "naive-time",
    ],
)
async def test_an_invalid_survey_gets_422_naming_each_field(
    client: httpx.AsyncClient, body: dict, expected: set[tuple]
) -> None:
    assert fields(await client.post("/surveys", json={"customer_id": "c-1", **body})) == expected
