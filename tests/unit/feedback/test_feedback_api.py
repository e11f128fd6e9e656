"""The feedback HTTP API in-process (httpx + ASGI) over the in-memory fakes: field errors, the closed
loop with If-Match, listings, surveys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

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


# -- history entered after the fact: filed_at and the steps' at ---------------------------------------
PAST = "2011-03-01T10:00:00Z"


async def test_a_complaint_filed_in_the_past_runs_its_deadlines_from_its_filing_date(client: httpx.AsyncClient) -> None:
    filed = await file(client, "k-1", filed_at="2011-03-01T10:00:00+00:00")
    assert (filed["filed_at"], filed["acknowledge_by"], filed["resolve_by"]) == (
        PAST,
        "2011-03-01T14:00:00Z",  # high: 4 h
        "2011-03-04T10:00:00Z",  # and 3 days
    )
    [event] = (await client.get("/complaints/k-1/events")).json()
    assert event["data"]["filed_at"] == PAST


async def test_the_steps_of_an_imported_complaint_keep_their_dates_and_the_breaches_they_imply(
    client: httpx.AsyncClient,
) -> None:
    await file(client, "k-1", filed_at=PAST)
    late = await client.post(
        "/complaints/k-1/acknowledgement", json={"acknowledged_by": "agent-7", "at": "2011-03-01T16:30:00+01:00"}
    )
    assert late.status_code == 200, late.text
    assert (late.json()["acknowledged_at"], late.json()["escalations"]) == ("2011-03-01T15:30:00Z", 1)
    await client.post("/complaints/k-1/resolution", json={"resolution": "refund", "at": "2011-03-02T09:00:00Z"})
    await client.post("/complaints/k-1/reopening", json={"reason": "no refund", "at": "2011-03-05T09:00:00Z"})
    await client.post("/complaints/k-1/resolution", json={"resolution": "refunded", "at": "2011-03-06T09:00:00Z"})
    closed = await client.post("/complaints/k-1/confirmation", json={"at": "2011-03-07T09:00:00Z"})
    assert closed.status_code == 200, closed.text
    state = closed.json()
    assert (state["status"], state["resolved_at"], state["reopened_at"], state["confirmed_at"]) == (
        "closed",
        "2011-03-06T09:00:00Z",
        "2011-03-05T09:00:00Z",
        "2011-03-07T09:00:00Z",
    )
    events = (await client.get("/complaints/k-1/events")).json()
    assert [(e["event_type"], e["data"].get("breach")) for e in events[:3]] == [
        ("ComplaintFiled", None),
        ("ComplaintEscalated", "acknowledge"),  # recorded by the late acknowledgement itself
        ("ComplaintAcknowledged", None),
    ]
    assert events[-1]["data"]["confirmed_at"] == "2011-03-07T09:00:00Z"
    assert events[1]["occurred_at"] == events[2]["occurred_at"] == "2026-05-04T08:00:00Z"  # recorded "now"


async def test_a_confirmation_needs_no_body(client: httpx.AsyncClient, service: Service) -> None:
    await file(client, "k-1")
    await client.post("/complaints/k-1/resolution", json={"resolution": "refund"})
    service.clock.advance(hours=1)
    closed = await client.post("/complaints/k-1/confirmation")
    assert (closed.status_code, closed.json()["confirmed_at"]) == (200, "2026-05-04T09:00:00Z")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/complaints", {"complaint_id": "k-2", "filed_at": "2026-05-04T08:06:00Z"}, "filed_at"),
        ("/complaints/k-1/acknowledgement", {"at": "2026-05-05T08:00:00Z"}, "at"),
        ("/complaints/k-1/resolution", {"resolution": "x", "at": "2030-01-01T00:00:00Z"}, "at"),
        ("/surveys", {"customer_id": "c-1", "csat": 4, "answered_at": "2026-05-04T09:00:00+00:00"}, "answered_at"),
    ],
    ids=["filing", "acknowledgement", "resolution", "survey"],
)
async def test_an_instant_in_the_future_is_a_422_naming_the_field_and_records_nothing(
    client: httpx.AsyncClient, service: Service, path: str, body: dict, field: str
) -> None:
    await file(client, "k-1")
    base = {"customer_id": "c-1", "category": "delivery", "severity": "high", "summary": "x"}
    response = await client.post(path, json={**base, **body} if path == "/complaints" else body)
    assert fields(response) == {("body", field)}
    assert response.json()["code"] == "in_the_future"
    assert "in the future" in response.json()["detail"][0]["msg"]
    assert list(service.store.streams) == ["complaint-k-1"]
    assert (await client.get("/complaints/k-1")).json()["version"] == 1


async def test_an_instant_within_the_tolerated_clock_skew_is_accepted(client: httpx.AsyncClient) -> None:
    filed = await file(client, "k-1", filed_at="2026-05-04T08:04:00Z")  # the caller's clock is 4 minutes ahead
    assert filed["filed_at"] == "2026-05-04T08:04:00Z"
    acknowledged = await client.post("/complaints/k-1/acknowledgement", json={})  # "now", but not before the filing
    assert acknowledged.json()["acknowledged_at"] == "2026-05-04T08:04:00Z"


async def test_a_step_before_the_previous_one_is_a_422_naming_that_step(client: httpx.AsyncClient) -> None:
    await file(client, "k-1", filed_at=PAST)
    await client.post("/complaints/k-1/acknowledgement", json={"at": "2011-03-01T12:00:00Z"})
    response = await client.post("/complaints/k-1/resolution", json={"resolution": "x", "at": "2011-03-01T11:00:00Z"})
    assert fields(response) == {("body", "at")}
    error = response.json()["detail"][0]
    assert (response.json()["code"], error["input"]) == ("before_previous_step", "2011-03-01T11:00:00Z")
    assert "previous step (acknowledgement at 2011-03-01T12:00:00Z)" in error["msg"]
    assert (await client.get("/complaints/k-1")).json()["version"] == 2

    await file(client, "k-2", filed_at=PAST)
    before_filing = await client.post("/complaints/k-2/acknowledgement", json={"at": "2011-02-28T00:00:00Z"})
    assert "previous step (filing at 2011-03-01T10:00:00Z)" in before_filing.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "at", ["2011-03-01T10:00:00", "yesterday", "0001-01-01T00:00:00+05:00"], ids=["no-offset", "not-a-date", "range"]
)
async def test_a_malformed_step_time_is_a_422_naming_it(client: httpx.AsyncClient, at: str) -> None:
    await file(client, "k-1")
    assert fields(await client.post("/complaints/k-1/acknowledgement", json={"at": at})) == {("body", "at")}
    assert fields(await client.post("/complaints", json={"customer_id": "c-1", "filed_at": at})) >= {
        ("body", "filed_at")
    }


async def test_a_complaint_is_filed_with_its_history_in_one_append(
    client: httpx.AsyncClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    appends: list[int] = []
    append = service.store.append

    async def counted(stream_id: str, aggregate_type: str, version: int, events: list, *rest: Any, **kw: Any) -> int:
        appends.append(len(events))
        return await append(stream_id, aggregate_type, version, events, *rest, **kw)

    monkeypatch.setattr(service.store, "append", counted)
    steps = [
        {"step": "acknowledgement", "at": "2011-03-01T11:00:00Z", "acknowledged_by": "agent-7"},
        {"step": "resolution", "at": "2011-03-05T10:00:00Z", "resolution": "refund"},  # a day late
        {"step": "reopening", "at": "2011-03-06T10:00:00Z", "reason": "no refund"},
        {"step": "resolution", "at": "2011-03-07T10:00:00Z", "resolution": "refunded"},
        {"step": "confirmation", "at": "2011-03-08T10:00:00Z"},
    ]
    filed = await file(client, "k-1", filed_at=PAST, steps=steps)
    assert (filed["status"], filed["version"], filed["escalations"], filed["reopen_count"]) == ("closed", 7, 1, 1)
    assert (filed["acknowledged_at"], filed["confirmed_at"]) == ("2011-03-01T11:00:00Z", "2011-03-08T10:00:00Z")
    assert appends == [7]  # the filing, five steps and the late resolution's escalation: one append
    assert len(service.store.outbox) == 7
    types = [e["event_type"] for e in (await client.get("/complaints/k-1/events")).json()]
    assert types[:4] == ["ComplaintFiled", "ComplaintAcknowledged", "ComplaintEscalated", "ComplaintResolved"]


@pytest.mark.parametrize(
    ("steps", "loc", "code"),
    [
        ([{"step": "confirmation", "at": PAST}], ("body", "steps", 0, "step"), "step_out_of_turn"),
        (
            [
                {"step": "acknowledgement", "at": "2011-03-01T12:00:00Z"},
                {"step": "resolution", "at": "2011-03-01T11:00:00Z", "resolution": "x"},
            ],
            ("body", "steps", 1, "at"),
            "before_previous_step",
        ),
        ([{"step": "acknowledgement", "at": "2026-05-05T00:00:00Z"}], ("body", "steps", 0, "at"), "in_the_future"),
    ],
    ids=["out-of-turn", "before-previous", "future"],
)
async def test_a_history_with_a_refused_step_is_a_422_naming_it_and_files_nothing(
    client: httpx.AsyncClient, service: Service, steps: list[dict], loc: tuple, code: str
) -> None:
    body = {"customer_id": "c-1", "category": "delivery", "severity": "high", "summary": "x", "complaint_id": "k-1"}
    response = await client.post("/complaints", json={**body, "filed_at": PAST, "steps": steps})
    assert fields(response) == {loc}
    assert response.json()["code"] == code
    assert service.store.streams == {}
    assert (await client.get("/complaints/k-1")).status_code == 404


async def test_a_malformed_history_step_is_a_422(client: httpx.AsyncClient) -> None:
    base = {"customer_id": "c-1", "category": "delivery", "severity": "high", "summary": "x"}
    no_time = await client.post("/complaints", json={**base, "steps": [{"step": "confirmation"}]})
    assert fields(no_time) == {("body", "steps", 0, "confirmation", "at")}
    unknown = await client.post("/complaints", json={**base, "steps": [{"step": "escalation", "at": PAST}]})
    assert fields(unknown) == {("body", "steps", 0)}


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


@pytest.mark.parametrize(("field", "score"), [("nps", True), ("csat", "3"), ("csat", 1.0), ("nps", 7.0)])
async def test_a_score_must_be_a_json_integer(client: httpx.AsyncClient, field: str, score: object) -> None:
    response = await client.post("/surveys", json={"customer_id": "c-1", field: score})

    assert fields(response) == {("body", field)}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("resolution", {"resolution": "   "}, "resolution"),
        ("reopening", {"reason": " "}, "reason"),
        ("acknowledgement", {"acknowledged_by": "  "}, "acknowledged_by"),
    ],
)
async def test_blank_text_on_a_step_is_a_422(
    client: httpx.AsyncClient, path: str, body: dict[str, str], field: str
) -> None:
    await file(client, "k-1")

    response = await client.post(f"/complaints/k-1/{path}", json=body)

    assert fields(response) == {("body", field)}
    assert response.json()["detail"][0]["type"] == "string_blank"


async def test_a_blank_summary_is_a_422(client: httpx.AsyncClient) -> None:
    body = {"customer_id": "c-1", "category": "delivery", "severity": "high", "summary": " \n "}

    assert fields(await client.post("/complaints", json=body)) == {("body", "summary")}


async def test_an_acknowledgement_without_a_body_is_taken_as_an_empty_one(client: httpx.AsyncClient) -> None:
    await file(client, "k-1")

    response = await client.post("/complaints/k-1/acknowledgement")

    assert (response.status_code, response.json()["status"]) == (200, "acknowledged")


@pytest.mark.parametrize(
    ("path", "body", "unknown"),
    [
        ("/surveys", {"customer_id": "c-1", "nps": 9, "score": 3}, ("body", "score")),
        (
            "/complaints",
            {"customer_id": "c-1", "category": "delivery", "severity": "high", "summary": "x", "filedAt": "x"},
            ("body", "filedAt"),
        ),
        (
            "/complaints",
            {
                "customer_id": "c-1",
                "category": "delivery",
                "severity": "high",
                "summary": "x",
                "filed_at": "2026-05-01T00:00:00Z",
                "steps": [{"step": "confirmation", "at": "2026-05-02T00:00:00Z", "by": "me"}],
            },
            ("body", "steps", 0, "confirmation", "by"),
        ),
    ],
)
async def test_an_unknown_body_field_is_a_422_naming_it(
    client: httpx.AsyncClient, path: str, body: dict[str, object], unknown: tuple
) -> None:
    response = await client.post(path, json=body)

    assert fields(response) == {unknown}
    assert response.json()["detail"][0]["type"] == "extra_forbidden"


async def test_an_unknown_field_of_a_step_command_is_a_422(client: httpx.AsyncClient) -> None:
    await file(client, "k-1")

    assert fields(await client.post("/complaints/k-1/acknowledgement", json={"acknowledgedBy": "a"})) == {
        ("body", "acknowledgedBy")
    }


async def test_a_nul_in_a_comment_summary_or_id_is_a_422_naming_where(client: httpx.AsyncClient) -> None:
    survey = await client.post("/surveys", json={"customer_id": "c-1", "nps": 9, "comment": "ok\u0000"})
    complaint = await client.post(
        "/complaints", json={"customer_id": "c-1", "category": "delivery", "severity": "high", "summary": "\u0000"}
    )

    assert fields(survey) == {("body", "comment")}
    assert fields(complaint) == {("body", "summary")}
    assert fields(await client.get("/complaints/a%00b")) == {("path",)}
    assert fields(await client.get("/customers/c-1/complaints?status=open%00")) == {("query", "status")}
    assert fields(await client.get("/surveys/a%20b")) == {("path", "survey_id")}


async def test_personal_data_in_a_complaint_summary_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    body = {"customer_id": "c-1", "category": "delivery", "severity": "high", "summary": "call me: +44 20 7946 0958"}

    assert fields(await client.post("/complaints", json=body)) == {("body", "summary")}
