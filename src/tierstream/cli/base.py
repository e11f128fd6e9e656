"""What every command of the ``tierstream`` CLI shares: the app, its consoles, the stack's settings, calls
to the services' APIs, and how a command fails (a message on stderr, exit code 1)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup, TyperOption

from tierstream import api, stack


class _FlagsTakeNoValue:
    """Typer's rich help prints a value type after every option, flags included (``--help <bool>``), as if
    they took a value; its plain help leaves flags without one. So does this: a flag's type column is empty."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
                param.metavar = ""
        return params


class Command(_FlagsTakeNoValue, TyperCommand):
    """Every command of the CLI (``@app.command(cls=Command)``)."""


class Group(_FlagsTakeNoValue, TyperGroup):
    """The CLI itself."""


app = typer.Typer(
    cls=Group,
    help="Tierstream: event-sourced customer management — local stack and tools.",
    add_completion=False,
    rich_markup_mode="markdown",
)

console = Console()

err = Console(stderr=True)

KafkaPort = Annotated[int, typer.Option(help="Kafka client port")]

PgPort = Annotated[int, typer.Option(help="PostgreSQL port")]

Partitions = Annotated[int, typer.Option(min=1, help="partitions of the contract topics")]


def stack_config(
    kafka_port: int = stack.DEV_KAFKA_PORT, pg_port: int = stack.DEV_PG_PORT, partitions: int = 3
) -> stack.StackConfig:
    return stack.StackConfig(kafka_port=kafka_port, pg_port=pg_port, partitions=partitions)


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def request(
    config: stack.StackConfig,
    service: str,
    method: str,
    path: str,
    *,
    accept: Collection[int] = (),
    timeout: float = 10,
    **kwargs: Any,
) -> httpx.Response:
    """One call to a service API of the local stack with the token; :class:`tierstream.api.ApiError` unless
    it answered 2xx or a status in ``accept``."""
    with api.new_client(stack.auth_headers(), timeout) as client:
        return api.call(client, service, method, f"{config.url(service)}{path}", accept=accept, **kwargs)


def call(
    config: stack.StackConfig,
    service: str,
    method: str,
    path: str,
    *,
    accept: Collection[int] = (),
    timeout: float = 10,
    **kwargs: Any,
) -> httpx.Response:
    """:func:`request`, where a failure ends the command with the message and exit code 1."""
    try:
        return request(config, service, method, path, accept=accept, timeout=timeout, **kwargs)
    except api.ApiError as exc:
        raise fail(str(exc)) from exc


def parse_instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise fail(
            f"{option} {value!r} is not an ISO 8601 date or instant (e.g. 2011-12-10 or 2011-12-10T00:00Z)"
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
