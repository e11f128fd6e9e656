"""Every command that calls a service API ends with a message and exit code 1 on any answer outside 2xx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tierstream.api import detail
from tierstream.cli import app

pytestmark = pytest.mark.unit

#: the ``answers`` fixture (conftest.py): (method, path) → (status, JSON body) or an exception to raise
Answers = dict[tuple[str, str], Any]
SEGMENT = ("GET", "/customers/C12431/segment")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())  # as one line, before the terminal wraps it


def test_a_refused_token_is_an_error_naming_the_service_and_the_status(answers: Answers) -> None:
    answers[SEGMENT] = (401, {"detail": "invalid bearer token"})
    code, output = run("segment", "C12431")
    assert code == 1
    assert "the segmentation API refused the token (HTTP 401: invalid bearer token); set TIERSTREAM_TOKEN" in output


def test_a_token_without_the_scope_is_refused_too(answers: Answers) -> None:
    answers[("POST", "/calibrations")] = (403, {"detail": "the token lacks the scope 'segmentation:admin'"})
    code, output = run("recalibrate")
    assert code == 1
    assert "refused the token (HTTP 403: the token lacks the scope 'segmentation:admin')" in output


def test_any_other_failure_names_the_status_the_call_and_what_the_service_said(answers: Answers) -> None:
    field_error = {"loc": ["body", "as_of"], "msg": "Input should be after 1970", "type": "value_error"}
    answers[("POST", "/calibrations")] = (422, {"detail": [field_error]})
    code, output = run("recalibrate", "--as-of", "1900-01-01")
    assert code == 1
    assert "the segmentation API answered HTTP 422 to POST /calibrations: as_of: Input should be after 1970" in output


def test_a_service_that_does_not_answer_asks_whether_the_stack_is_up(answers: Answers) -> None:
    answers[SEGMENT] = httpx.ConnectError("[Errno 111] Connection refused")
    code, output = run("segment", "C12431")
    assert code == 1
    assert "cannot reach the segmentation API at http://127.0.0.1:8004/customers/C12431/segment" in output
    assert "is the stack up? (tierstream up)" in output


def test_an_unknown_customer_is_still_its_own_message_and_a_known_one_prints(answers: Answers) -> None:
    assert run("segment", "C12431")[0] == 1  # unlisted: 404
    assert "no segment for customer 'C12431'" in run("segment", "C12431")[1]
    answers[SEGMENT] = (200, {"customer_id": "C12431", "value_tier": "vip"})
    code, output = run("segment", "C12431")
    assert code == 0 and '"value_tier": "vip"' in output


def test_streams_fails_on_a_refused_token_instead_of_reading_it_as_no_events(answers: Answers) -> None:
    answers[("GET", "/customers/C1/events")] = (401, {"detail": "invalid bearer token"})
    code, output = run("streams", "C1")
    assert code == 1
    assert "the customers API refused the token (HTTP 401: invalid bearer token)" in output


def test_streams_fails_on_a_server_error_in_any_service(answers: Answers) -> None:
    answers[("GET", "/customers/C1/events")] = (200, [])
    answers[("GET", "/customers/C1/orders")] = (503, {"detail": "the database is unreachable"})
    code, output = run("streams", "C1")
    assert code == 1
    assert "the orders API answered HTTP 503 to GET /customers/C1/orders: the database is unreachable" in output


def test_streams_as_json_prints_one_line_per_event(answers: Answers) -> None:
    event = {"occurred_at": "2011-01-01T10:00:00Z", "stream_version": 1, "event_type": "CustomerRegistered"}
    answers[("GET", "/customers/C1/events")] = (200, [{**event, "data": {"company_name": "Ünïcode Ltd"}}])
    result = CliRunner().invoke(app, ["streams", "C1", "--json"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["data"] == {"company_name": "Ünïcode Ltd"}


def test_what_a_service_said_is_its_detail_or_else_its_body() -> None:
    request = httpx.Request("GET", "http://x/y")
    assert detail(httpx.Response(409, json={"detail": "already filed", "code": "x"}, request=request)) == (
        "already filed"
    )
    assert detail(httpx.Response(502, text="Bad gateway from the proxy", request=request)) == (
        "Bad gateway from the proxy"
    )
    assert detail(httpx.Response(500, request=request)) == "Internal Server Error"
    assert detail(httpx.Response(500, text="x" * 400, request=request)).endswith("…")
