"""The ``tierstream deadletters`` commands: ``list`` and ``redrive`` (the reading, selecting and sending is
:mod:`tierstream.deadletters`; docs/operations.md, "Dead letters: inspect and re-drive", says when and how)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand

from shared.events.topics import Topics
from shared.settings import DEV_KAFKA_PORT
from tierstream import deadletters
from tierstream.deadletters import (
    DeadLettersError,
    Entry,
    Scan,
    Selection,
    event_of,
    parse_offset,
    plan_redrive,
    select,
)

console = Console()
err = Console(stderr=True)

Group = Annotated[str | None, typer.Option(help="consumer group that dead-lettered them (namespace optional)")]
Reason = Annotated[str | None, typer.Option(help="reason, e.g. handler_failed or unknown_event_type")]
Bootstrap = Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka to use, host:port[,host:port…]")]
Namespace = Annotated[
    str, typer.Option(envvar="TIERSTREAM_TOPIC_NAMESPACE", help="topic namespace (prefix; empty in production)")
]
DEFAULT_BOOTSTRAP = f"127.0.0.1:{DEV_KAFKA_PORT}"


def _check_offsets(values: list[str] | None) -> list[str] | None:
    """Refuses a bad ``--offset`` as a bad option (exit code 2), before anything is read."""
    for value in values or ():
        parse_offset(value)
    return values


def build_app(command: type[TyperCommand], fail: Callable[[str], typer.Exit]) -> typer.Typer:
    """The ``deadletters`` sub-app: its commands are of the CLI's ``command`` class and end through its
    ``fail`` (message on stderr, exit code 1), as every other command does."""
    app = typer.Typer(help="Inspect dead letters and re-drive them once their cause is fixed.", no_args_is_help=True)

    def read(namespace: str, bootstrap: str) -> Scan:
        try:
            found = asyncio.run(deadletters.scan(Topics(namespace).deadletter, bootstrap))
        except DeadLettersError as exc:
            raise fail(str(exc)) from exc
        _report_unreadable(found.entries)
        return found

    @app.command("list", cls=command)
    def list_command(
        group: Group = None,
        reason: Reason = None,
        topic: Annotated[str | None, typer.Option(help="original topic, e.g. crm.orders.v1")] = None,
        limit: Annotated[int | None, typer.Option(min=1, metavar="N", help="show only the N most recent")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line, no tables")] = False,
        bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
        namespace: Namespace = "",
    ) -> None:
        """List the dead letters (the topic from its beginning to its current end), counted by group and reason."""
        found = read(namespace, bootstrap)
        selected = sorted(select(found.entries, Selection(group, reason, topic, namespace=namespace)), key=_when)
        shown = selected[-limit:] if limit else selected
        if as_json:
            for entry in shown:
                typer.echo(json.dumps(as_dict(entry), ensure_ascii=False))
            return
        if not selected:
            console.print("no dead letters" + (" match" if group or reason or topic else ""))
        else:
            console.print(_table(shown, f"{len(shown)} of {_count(len(selected), 'dead letter')}"))
            console.print(_summary(selected))
        unreadable = sum(e.letter is None for e in found.entries)
        if unreadable:
            console.print(
                f"and {_count(unreadable, 'record')} of the topic that {'is not a dead letter' if unreadable == 1 else 'are not dead letters'} (listed above)",
                soft_wrap=True,
            )

    @app.command(cls=command)
    def redrive(
        group: Annotated[str, typer.Option(help="consumer group whose dead letters to re-drive")],
        reason: Reason = None,
        offset: Annotated[
            list[str] | None,
            typer.Option(
                metavar="O",
                callback=_check_offsets,
                help="only this dead letter: OFFSET or PARTITION@OFFSET (repeatable)",
            ),
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="only show what would be re-driven")] = False,
        yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
        bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
        namespace: Namespace = "",
    ) -> None:
        """Publish one group's dead-lettered originals again, byte for byte, to the topics they came from."""
        selection = Selection(group, reason, offsets=tuple(parse_offset(o) for o in offset or ()), namespace=namespace)
        scanned = read(namespace, bootstrap)
        try:
            plan = plan_redrive(scanned, selection)
        except DeadLettersError as exc:
            raise fail(str(exc)) from exc
        for entry in plan.withheld:
            err.print(
                f"[yellow]skipped dead letter {entry.position}[/]: its value withholds personal data "
                f"({escape(', '.join(entry.withheld))}), so it is not the original; the producer must send the "
                "event again without it",
                highlight=False,
                soft_wrap=True,
            )
        if not plan.ready and not plan.withheld:
            groups = sorted({e.letter.consumer_group for e in scanned.entries if e.letter is not None})
            console.print(
                f"no dead letter of group {group!r} matches; groups with dead letters: {', '.join(groups) or 'none'}",
                soft_wrap=True,
            )
            return
        console.print(_table(plan.ready, f"{_count(len(plan.ready), 'dead letter')} of {group} to re-drive"))
        if dry_run or not plan.ready:
            console.print(f"{'dry run: ' if dry_run else ''}nothing sent; skipped: {plan.skipped()}", soft_wrap=True)
            return
        if not yes:
            typer.confirm(f"Re-drive {_count(len(plan.ready), 'dead letter')} to their original topics?", abort=True)
        try:
            sent = asyncio.run(
                deadletters.republish([e.original for e in plan.ready if e.original is not None], bootstrap)
            )
        except DeadLettersError as exc:
            raise fail(str(exc)) from exc
        console.print(
            f"sent {_count(sent, 'record')} to their original topics; skipped: {plan.skipped()}", soft_wrap=True
        )

    return app


def as_dict(entry: Entry) -> dict[str, Any]:
    """One dead letter for ``list --json``."""
    assert entry.letter is not None
    letter, (event_type, event_id) = entry.letter, event_of(entry)
    return {
        "partition": entry.partition,
        "offset": entry.offset,
        "dead_lettered_at": letter.dead_lettered_at.isoformat(),
        "consumer_group": letter.consumer_group,
        "reason": letter.reason,
        "original": {
            "topic": letter.original.topic,
            "partition": letter.original.partition,
            "offset": letter.original.offset,
        },
        "event_type": event_type,
        "event_id": event_id,
        "withheld": list(entry.withheld),
        "detail": letter.detail,
    }


def _when(entry: Entry) -> tuple[Any, int, int]:
    assert entry.letter is not None
    return (entry.letter.dead_lettered_at, entry.partition, entry.offset)


def _table(entries: Sequence[Entry], title: str) -> Table:
    table = Table(title=title)
    for column in ("dead letter", "when (UTC)", "group", "reason", "original", "event", "detail"):
        table.add_column(column, overflow="fold")  # a narrow terminal wraps, never cuts
    for entry in entries:
        assert entry.letter is not None
        letter, (event_type, event_id) = entry.letter, event_of(entry)
        detail = letter.detail if len(letter.detail) <= 80 else letter.detail[:79] + "…"
        table.add_row(
            entry.position,
            letter.dead_lettered_at.isoformat()[:19].replace("T", " "),
            letter.consumer_group,
            letter.reason + (" [yellow](withheld)[/]" if entry.withheld else ""),
            f"{letter.original.topic}:{letter.original.partition}@{letter.original.offset}",
            escape("\n".join(part for part in (event_type, event_id) if part) or "-"),
            escape(detail),
        )
    return table


def _summary(entries: Iterable[Entry]) -> Table:
    counts = Counter((e.letter.consumer_group, e.letter.reason) for e in entries if e.letter is not None)
    table = Table(title="by group and reason")
    table.add_column("group")
    table.add_column("reason")
    table.add_column("dead letters", justify="right")
    for (group, reason), count in sorted(counts.items()):
        table.add_row(group, reason, f"{count:,}")
    return table


def _report_unreadable(entries: Iterable[Entry]) -> None:
    for entry in entries:
        if entry.problem is not None:
            err.print(
                f"[yellow]skipped record {entry.position}[/] of the dead-letter topic: {escape(entry.problem)}",
                highlight=False,
                soft_wrap=True,
            )


def _count(n: int, noun: str) -> str:
    """``1 record``, ``2 records``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
