"""``tierstream status``: every service, Kafka and PostgreSQL with what is wrong, by name; exit code 1 unless
everything runs and is ready."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tierstream import stack
from tierstream.cli import app, base

pytestmark = pytest.mark.unit

PIDS = {"customers": 101, "orders": 102, "feedback": 103, "segmentation": 104}
READY = (200, {"status": "ok", "checks": {"database": True, "kafka": True}})
INFRA_UP = [
    stack.InfraState("Kafka", 201, 9092, listening=True),
    stack.InfraState("PostgreSQL", 202, 55432, listening=True),
]


@pytest.fixture
def running(answers: dict[tuple[str, str], Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Every service has a PID and answers ready; Kafka and PostgreSQL run. Tests take parts away."""
    monkeypatch.setattr(base.console, "width", 200)  # one line per row
    pids = dict(PIDS)
    monkeypatch.setattr(stack, "service_pid", lambda config, service: pids.get(service))
    monkeypatch.setattr(stack, "infra_states", lambda config: list(INFRA_UP))
    answers[("GET", "/health/ready")] = READY
    return pids


def said(result: object) -> str:
    return " ".join(result.output.split())  # type: ignore[attr-defined]


def test_everything_running_and_ready_exits_0_with_a_row_each_for_kafka_and_postgresql(running: dict) -> None:
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    assert any("Kafka" in r and "201" in r and "127.0.0.1:9092" in r and "running" in r for r in rows)
    assert any("PostgreSQL" in r and "202" in r and "127.0.0.1:55432" in r and "running" in r for r in rows)
    assert sum("ready" in r for r in rows) == 4


def test_a_dead_service_is_not_running_with_what_to_do_and_exits_1(running: dict) -> None:
    del running["segmentation"]
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 1
    row = next(r for r in result.output.splitlines() if "segmentation" in r)
    assert "not running (run `tierstream up`)" in row
    assert "segmentation not running" in said(result)


def test_an_unavailable_service_names_the_dependency_that_failed(
    running: dict, answers: dict[tuple[str, str], Any]
) -> None:
    answers[("GET", "/health/ready")] = (503, {"status": "unavailable", "checks": {"database": False, "kafka": True}})
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 1
    assert sum("unavailable: database" in r for r in result.output.splitlines() if "│" in r) == 4
    assert "segmentation unavailable: database" in said(result)


def test_a_ready_service_whose_advisory_check_failed_is_ready_and_says_what_is_away(
    running: dict, answers: dict[tuple[str, str], Any]
) -> None:
    body = {"status": "ok", "checks": {"database": True, "kafka": False}, "advisory": ["kafka"]}
    answers[("GET", "/health/ready")] = (200, body)
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0
    assert sum("ready (kafka not answering)" in r for r in result.output.splitlines() if "│" in r) == 4


def test_a_service_that_does_not_answer_says_so(running: dict, answers: dict[tuple[str, str], Any]) -> None:
    answers[("GET", "/health/ready")] = httpx.ConnectError("connection refused")
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 1
    assert "no answer" in said(result)


@pytest.mark.parametrize(
    ("kafka", "state"),
    [
        (stack.InfraState("Kafka", None, 9092, listening=False), "not running (run `tierstream up`)"),
        (stack.InfraState("Kafka", 201, 9092, listening=False), "not answering on 127.0.0.1:9092"),
        (
            stack.InfraState("Kafka", 201, 9092, listening=True, unanswered="no answer within 3 s"),
            "accepts connections but does not serve requests: no answer within 3 s",
        ),
    ],
)
def test_kafka_down_is_shown_and_exits_1(
    kafka: stack.InfraState, state: str, running: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "infra_states", lambda config: [kafka, INFRA_UP[1]])
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 1
    assert state in next(r for r in result.output.splitlines() if "Kafka" in r and "│" in r)
    assert f"Kafka {state}" in said(result)


def test_the_infrastructure_pid_is_what_the_projects_script_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    reports = {
        "kafka-local.sh": subprocess.CompletedProcess([], 1, stdout="not running\n", stderr=""),
        "pg-local.sh": subprocess.CompletedProcess([], 0, stdout="running pid 29462 at postgresql://…\n", stderr=""),
    }
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: reports[command[1].rsplit("/", 1)[-1]])
    monkeypatch.setattr(stack, "listening", lambda port: port == 55432)
    monkeypatch.setattr(stack, "postgres_unanswered", lambda url: None)
    kafka, postgres = stack.infra_states(stack.StackConfig())
    assert (kafka.pid, kafka.running, kafka.unanswered) == (None, False, None)  # not listening: not probed
    assert (postgres.pid, postgres.port, postgres.running) == (29462, 55432, True)


def test_a_server_whose_port_accepts_connections_but_that_does_not_answer_is_not_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import subprocess

    running = subprocess.CompletedProcess([], 0, stdout="running pid 7 at postgresql://x@127.0.0.1:1/postgres\n")
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: running)
    monkeypatch.setattr(stack, "listening", lambda port: True)
    monkeypatch.setattr(stack, "kafka_unanswered", lambda bootstrap: "no answer within 3 s")
    monkeypatch.setattr(stack, "postgres_unanswered", lambda url: None)
    kafka, postgres = stack.infra_states(stack.StackConfig())
    assert (kafka.pid, kafka.listening, kafka.unanswered, kafka.running) == (7, True, "no answer within 3 s", False)
    assert postgres.running
