"""``tierstream rebuild``: replay every topic into fresh segmentation tables and compare with the live ones."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from tierstream import api, stack
from tierstream.cli import base
from tierstream.cli.base import Command, KafkaPort, PgPort, app, console, err, fail, parse_instant, request


@app.command(cls=Command)
def rebuild(
    clock: Annotated[
        str | None,
        typer.Option(
            "--clock",
            help="the fixed instant to replay at (ISO 8601; default: the segmentation service's clock, else now)",
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="keep the rebuild schema for inspection (default: drop it after comparing)")
    ] = False,
    kafka_port: KafkaPort = stack.DEV_KAFKA_PORT,
    pg_port: PgPort = stack.DEV_PG_PORT,
) -> None:
    """Replay every topic into fresh segmentation tables and compare them with the live ones (per table).

    Each rebuilt customer is graded as of the instant its live grades were taken, so a service whose clock
    moves on is compared like for like. The fresh tables live in a schema `rebuild_<stamp>` of the
    segmentation database, dropped once compared unless `--keep`."""
    config = base.stack_config(kafka_port, pg_port, 3)
    given = parse_instant(clock, "--clock")
    for what, port in (("Kafka", kafka_port), ("PostgreSQL", pg_port)):
        if not stack.listening(port):
            raise fail(f"cannot reach {what} at 127.0.0.1:{port}; is the stack up? (tierstream up)")
    instant = given or _service_clock(config) or datetime.now(UTC)
    with console.status(f"replaying every topic into fresh tables at {instant:%Y-%m-%d %H:%M}…"):
        report = _run_rebuild(config, instant, keep=keep)
    table = Table(title=f"rebuild into {report['schema']}: {_records_read(report)}")
    for column in ("table", "live rows", "rebuilt rows", "equal", "differing keys (first 10)"):
        table.add_column(column)
    for row in report["tables"]:
        table.add_row(
            row["table"],
            str(row["live_rows"]),
            str(row["rebuilt_rows"]),
            "yes" if row["equal"] else "[red]no[/]",
            ", ".join(list(dict.fromkeys(row["differing_keys"]))[:10]),
        )
    console.print(table)
    if report.get("operator_actions_replayed"):
        console.print(
            f"{report['operator_actions_replayed']} operator actions on churn alerts applied again where they were taken"
        )
    skipped = {reason: n for reason, n in report.get("alerts_not_compared", {}).items() if n}
    if skipped:
        console.print(
            "churn alerts not compared (see docs/segmentation.md, rebuild): "
            + ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in skipped.items())
        )
    _say_schema(config, report["schema"], kept=keep)
    if not report["identical"]:
        facts_equal = all(
            row["equal"]
            for row in report["tables"]
            if row["table"].startswith("customer_") and row["table"] != "customer_segments"
        )
        if facts_equal:
            err.print(
                "[yellow]the facts tables match; customer_segments rows that the running service re-graded "
                "while the rebuild ran (its sweep, new events) can differ: run the rebuild again[/]"
            )
        raise fail("the rebuilt projection differs from the live one (see the tables marked no)")
    console.print("[green]identical[/]: the live projection equals a replay of the history")


def _service_clock(config: stack.StackConfig) -> datetime | None:
    """The segmentation service's clock (a demo runs on the data's timeline), or None if it does not answer."""
    try:
        response = request(config, "segmentation", "GET", "/caller", timeout=3)
        at = datetime.fromisoformat(response.json()["service_time"])
    except (api.ApiError, ValueError, KeyError, TypeError):
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _records_read(report: dict[str, Any]) -> str:
    """How much the replay read: Kafka records (a redelivered event is on a topic twice), and of them how
    many distinct events it applied, when the report says."""
    said = f"{report['events_replayed']:,} records read"
    if "events_applied" not in report:
        return said
    skipped = [
        f"{report[k]:,} {what}"
        for k, what in (("duplicates", "duplicates"), ("dead_lettered", "dead-lettered"))
        if report.get(k)
    ]
    return f"{said}, {report['events_applied']:,} distinct events applied" + (
        f" ({', '.join(skipped)})" if skipped else ""
    )


def _say_schema(config: stack.StackConfig, schema: str, *, kept: bool) -> None:
    if not kept:
        console.print(f"dropped the rebuild schema {schema} (--keep keeps it for inspection)")
        return
    database = f"postgresql://tierstream:tierstream@127.0.0.1:{config.pg_port}/{config.database_prefix}segmentation"
    console.print(
        f"kept the rebuild schema [bold]{schema}[/] in the segmentation database; drop it when done:\n"
        f"  psql {database} -c 'DROP SCHEMA {schema} CASCADE'",
        soft_wrap=True,
    )


def _run_rebuild(config: stack.StackConfig, instant: datetime, *, keep: bool) -> dict[str, Any]:
    """``python -m segmentation rebuild`` against the local stack: its JSON report. When it fails, its whole
    output goes to ``<logs>/rebuild.log`` and the command ends with the error it died of."""
    import subprocess
    import sys

    infra = stack.Infra(
        bootstrap_servers=f"127.0.0.1:{config.kafka_port}",
        pg_url=f"postgresql://tierstream:tierstream@127.0.0.1:{config.pg_port}/postgres",
    )
    # a plain traceback (not typer's boxed one), so its last line is the error
    env = {**os.environ, **stack.service_env(config, infra, "segmentation"), "TYPER_STANDARD_TRACEBACK": "1"}
    command = [sys.executable, "-m", "segmentation", "rebuild", "--clock", instant.isoformat()]
    command.append("--keep" if keep else "--no-keep")
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    with contextlib.suppress(ValueError):
        report: dict[str, Any] = json.loads(result.stdout)
        return report
    log = config.log_dir / "rebuild.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"$ {' '.join(command)}\n[exit code {result.returncode}]\n{result.stdout}{result.stderr}")
    raise fail(f"rebuild failed (exit code {result.returncode}): {last_error(result.stderr)}\nits whole output: {log}")


def last_error(output: str, tail_lines: int = 6) -> str:
    """The error a Python process died of: what follows the frames of the last traceback in ``output``
    (the exception and its message), else the last ``tail_lines`` lines."""
    lines = output.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last):")]
    if starts:
        after = lines[starts[-1] + 1 :]
        # the frames are indented ("  File …", their source line, ^^^ markers); the exception is not
        first = next((i for i, line in enumerate(after) if line and not line[0].isspace()), None)
        if first is not None:
            return "\n".join(after[first : first + 12])
    return "\n".join(lines[-tail_lines:]) or "no output"
