"""``tierstream rebuild`` drops its ``rebuild_<stamp>`` schema once compared and says so; ``--keep`` keeps it
and says how to drop it. Its count is of Kafka records read, with the distinct events and duplicates."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tierstream import stack
from tierstream.cli import app, base

pytestmark = pytest.mark.unit

REPORT = {
    "identical": True,
    "schema": "rebuild_20261124075332",
    "events_replayed": 27_310,
    "events_applied": 27_000,
    "duplicates": 300,
    "dead_lettered": 10,
    "tables": [{"table": "customer_orders", "live_rows": 3, "rebuilt_rows": 3, "equal": True, "differing_keys": []}],
}


@pytest.fixture
def replays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands ``python -m segmentation rebuild`` would have run with; each answers :data:`REPORT`."""
    commands: list[list[str]] = []

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, stdout=json.dumps(REPORT), stderr="")

    real_config = base.stack_config

    def config_in_tmp(*args: int) -> stack.StackConfig:
        made = real_config(*args)
        made.state_dir = tmp_path
        return made

    monkeypatch.setattr(base, "stack_config", config_in_tmp)
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(stack, "listening", lambda port: True)
    return commands


def said(output: str) -> str:
    return " ".join(output.split())


def test_by_default_the_rebuild_schema_is_dropped_and_the_command_says_so(replays: list[list[str]]) -> None:
    result = CliRunner().invoke(app, ["rebuild", "--clock", "2011-12-10"])
    assert result.exit_code == 0, result.output
    assert replays[0][-1] == "--no-keep"
    assert "dropped the rebuild schema rebuild_20261124075332 (--keep keeps it for inspection)" in said(result.output)


def test_keep_keeps_the_schema_and_says_its_name_and_how_to_drop_it(replays: list[list[str]]) -> None:
    result = CliRunner().invoke(app, ["rebuild", "--clock", "2011-12-10", "--keep"])
    assert result.exit_code == 0, result.output
    assert replays[0][-1] == "--keep"
    text = said(result.output)
    assert "kept the rebuild schema rebuild_20261124075332 in the segmentation database" in text
    assert (
        "psql postgresql://tierstream:tierstream@127.0.0.1:55432/tierstream_segmentation "
        "-c 'DROP SCHEMA rebuild_20261124075332 CASCADE'" in text
    )
    assert "dropped" not in text


def test_the_count_is_of_records_read_with_the_distinct_events_and_the_duplicates(replays: list[list[str]]) -> None:
    result = CliRunner().invoke(app, ["rebuild", "--clock", "2011-12-10"])
    text = said(result.output)
    assert "27,310 records read, 27,000 distinct events applied (300 duplicates, 10 dead-lettered)" in text
    assert "events replayed" not in text


def clock_given(command: list[str]) -> str:
    return command[command.index("--clock") + 1]


def test_without_clock_the_replay_runs_at_the_segmentation_services_clock(
    replays: list[list[str]], answers: dict[tuple[str, str], Any]
) -> None:
    answers[("GET", "/caller")] = (200, {"caller": "token:x", "service_time": "2011-12-10T00:03:00+00:00"})
    result = CliRunner().invoke(app, ["rebuild"])
    assert result.exit_code == 0, result.output
    assert clock_given(replays[0]) == "2011-12-10T00:03:00+00:00"


def test_without_clock_and_without_an_answering_service_the_replay_runs_at_now(
    replays: list[list[str]], answers: dict[tuple[str, str], Any]
) -> None:
    answers[("GET", "/caller")] = httpx.ConnectError("connection refused")
    before = datetime.now(UTC)
    result = CliRunner().invoke(app, ["rebuild"])
    assert result.exit_code == 0, result.output
    assert before <= datetime.fromisoformat(clock_given(replays[0])) <= datetime.now(UTC)
