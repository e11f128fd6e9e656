"""``tierstream rebuild`` says why it failed: the stack is down, or the error the replay died of."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tierstream import stack
from tierstream.cli import app, base
from tierstream.cli.rebuild_command import last_error

pytestmark = pytest.mark.unit

TRACEBACK = """{"level": "info", "event": "rebuild started"}
Traceback (most recent call last):
  File "/x/segmentation/__main__.py", line 70, in rebuild_command
    report = asyncio.run(_rebuild(_aware(clock), keep))
             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/x/asyncpg/connection.py", line 2421, in connect
    return await connect_utils._connect(
asyncpg.exceptions.UndefinedTableError: relation "customer_facts" does not exist
HINT:  run the migrations first
"""


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stack's state (its logs) under ``tmp_path``, not the repository's .build."""
    real_config = base.stack_config

    def config_in_tmp(kafka_port: int, pg_port: int, partitions: int) -> stack.StackConfig:
        config = real_config(kafka_port, pg_port, partitions)
        config.state_dir = tmp_path
        return config

    monkeypatch.setattr(base, "stack_config", config_in_tmp)
    return tmp_path


def test_the_error_is_the_exception_after_the_frames_of_the_last_traceback() -> None:
    assert last_error(TRACEBACK) == (
        'asyncpg.exceptions.UndefinedTableError: relation "customer_facts" does not exist\n'
        "HINT:  run the migrations first"
    )
    chained = "Traceback (most recent call last):\n  File x\nKeyError: 'a'\n\nDuring handling…\n\n" + TRACEBACK
    assert last_error(chained).startswith("asyncpg.exceptions.UndefinedTableError")
    assert last_error("line 1\nline 2\nKilled\n", tail_lines=2) == "line 2\nKilled"
    assert last_error("") == "no output"


def test_a_failed_replay_shows_its_error_and_where_its_whole_output_is(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    died = subprocess.CompletedProcess([], 1, stdout="", stderr=TRACEBACK)
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: died)
    monkeypatch.setattr(stack, "listening", lambda port: True)
    result = CliRunner().invoke(app, ["rebuild", "--clock", "2011-12-10"])
    assert result.exit_code == 1
    assert 'rebuild failed (exit code 1): asyncpg.exceptions.UndefinedTableError: relation "customer_facts"' in (
        result.output
    )
    assert "is the stack up" not in result.output and "File " not in result.output
    log = state_dir / "logs" / "rebuild.log"
    assert f"its whole output: {log}" in " ".join(result.output.split())
    assert TRACEBACK in log.read_text()


@pytest.mark.parametrize(
    ("down", "what"), [(9092, "Kafka at 127.0.0.1:9092"), (55432, "PostgreSQL at 127.0.0.1:55432")]
)
def test_a_stack_that_is_down_is_named_before_anything_runs(
    down: int, what: str, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subprocess, "run", None)  # running the replay would fail the test
    monkeypatch.setattr(stack, "listening", lambda port: port != down)
    result = CliRunner().invoke(app, ["rebuild", "--kafka-port", "9092", "--pg-port", "55432"])
    assert result.exit_code == 1
    assert f"cannot reach {what}; is the stack up? (tierstream up)" in result.output
