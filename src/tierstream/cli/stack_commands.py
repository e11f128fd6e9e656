"""``tierstream up``, ``down`` and ``status``: the local stack's processes."""

from __future__ import annotations

import os
import time
from datetime import datetime

from rich.markup import escape
from rich.table import Table

from shared.clock import iso, running_from
from tierstream import api, stack
from tierstream.cli import base
from tierstream.cli.base import Command, KafkaPort, Partitions, PgPort, app, console, fail, request


def print_urls(config: stack.StackConfig, infra: stack.Infra) -> None:
    table = Table(title="Tierstream is up", show_lines=False)
    table.add_column("what")
    table.add_column("where")
    for service in stack.SERVICES:
        table.add_row(f"{service} API", f"{config.url(service)}/docs")
    table.add_row("dashboard", config.dashboard_url())
    table.add_row("segment of a customer", f"{config.url('segmentation')}/customers/<id>/segment")
    table.add_row("Kafka", infra.bootstrap_servers)
    table.add_row("PostgreSQL", infra.pg_url.replace(":tierstream@", ":***@"))
    table.add_row("logs", str(config.log_dir))
    console.print(table)
    console.print(f"Dashboard: [bold]{config.dashboard_url()}[/]", soft_wrap=True)
    console.print("[dim]  read-only; to act on alerts, sign out there and sign in with dev-admin[/]")
    console.print(f"API docs:  {config.url('segmentation')}/docs  (stop everything: tierstream down)", soft_wrap=True)


@app.command(cls=Command)
def up(
    kafka_port: KafkaPort = stack.DEV_KAFKA_PORT,
    pg_port: PgPort = stack.DEV_PG_PORT,
    partitions: Partitions = 3,
) -> None:
    """Start PostgreSQL, Kafka, migrations and all four services in the background.

    A service that is not running is started with the settings the stack's services were started with
    (`tierstream demo` remembers its simulated clock until `tierstream down`); a variable set in the
    environment wins over a remembered one."""
    config = base.stack_config(kafka_port, pg_port, partitions)
    started = time.monotonic()
    try:
        remembered = stack.remembered_settings(config)
        for service in stack.SERVICES:
            if remembered is not None and not stack.service_pid(config, service):
                console.print(_restart_note(remembered, service), soft_wrap=True)
        with console.status("starting PostgreSQL, Kafka and the services…"):
            infra = stack.up(config)
    except stack.StackError as exc:
        raise fail(str(exc)) from exc
    print_urls(config, infra)
    console.print(f"[dim]up in {time.monotonic() - started:.1f}s[/]")


def _restart_note(remembered: stack.RememberedSettings, service: str) -> str:
    """What ``up`` says before it starts ``service`` again on a stack with remembered settings."""
    applied, overridden = remembered.for_service(service, os.environ)
    prefix = f"{service.upper()}_"
    start, anchor = applied.pop(f"{prefix}CLOCK_START", None), applied.pop(f"{prefix}CLOCK_ANCHOR", None)
    parts = []
    if start is not None:
        parts.append(f"the {remembered.origin}'s clock from {start}" + _clock_now(start, anchor))
    if applied:
        parts.append(f"the {remembered.origin}'s {', '.join(sorted(applied))}")
    said = f"restarting {service} with " + " and ".join(parts) if parts else f"restarting {service}"
    if overridden:
        said += f"; {', '.join(overridden)} from the environment instead of the {remembered.origin}'s"
    return said


def _clock_now(start: str, anchor: str | None) -> str:
    """``, anchored at …: it continues at …`` — where the restarted service's clock will read."""
    if anchor is None:
        return " (no anchor: it starts there again)"
    try:
        now = running_from(datetime.fromisoformat(start), datetime.fromisoformat(anchor))()
    except (ValueError, TypeError):
        return f", anchored at {anchor}"  # the service refuses it at start, naming the variable
    return f", anchored at {anchor}: it continues at {iso(now)}"


@app.command(cls=Command)
def down() -> None:
    """Stop the services, Kafka and PostgreSQL that `tierstream up` started (by PID), and forget the settings
    they were started with (the demo's clock)."""
    config = base.stack_config()
    try:
        stopped = stack.down(config)
    except stack.StackError as exc:
        raise fail(str(exc)) from exc
    console.print(f"stopped: {', '.join(stopped) or 'no services'}; Kafka and PostgreSQL stopped")


@app.command(cls=Command)
def status() -> None:
    """Show which services, Kafka and PostgreSQL run and whether they are ready; exit code 1 if any is not."""
    config = base.stack_config()
    table = Table()
    for column in ("what", "pid", "where", "state"):
        table.add_column(column)
    problems: list[str] = []
    for service in stack.SERVICES:
        pid = stack.service_pid(config, service)
        state = _readiness(config, service) if pid else "not running (run `tierstream up`)"
        if not state.startswith("ready"):
            problems.append(f"{service} {state}")
        table.add_row(service, str(pid or "-"), config.url(service), escape(state))
    for infra in stack.infra_states(config):
        where = f"127.0.0.1:{infra.port}"
        if infra.running:
            state = "running"
        elif infra.pid is None:
            state = "not running (run `tierstream up`)"
        elif not infra.listening:
            state = f"not answering on {where}"
        else:  # the port accepts connections; the server behind does not serve (stopped, wedged, refusing)
            state = f"accepts connections but does not serve requests: {infra.unanswered}"
        if state != "running":
            problems.append(f"{infra.name} {state}")
        table.add_row(infra.name, str(infra.pid or "-"), where, escape(state))
    console.print(table)
    if problems:
        raise fail("; ".join(problems))


def _readiness(config: stack.StackConfig, service: str) -> str:
    """``ready`` (with the advisory checks that failed, e.g. ``ready (kafka not answering)``), or what is wrong:
    ``unavailable: database`` (the failed checks of /health/ready), no answer…"""
    try:
        response = request(config, service, "GET", "/health/ready", accept=(503,), timeout=3)
        body = response.json()
    except api.ApiError as exc:
        return f"no answer ({exc})"
    except ValueError:
        return f"answered HTTP {response.status_code} without JSON"
    checks = body.get("checks") if isinstance(body, dict) else None
    failed = sorted(name for name, ok in checks.items() if not ok) if isinstance(checks, dict) else []
    if response.status_code == 200:  # a failed advisory check (kafka) does not make a service unready
        return f"ready ({', '.join(failed)} not answering)" if failed else "ready"
    return f"{body.get('status', 'unavailable')}: {', '.join(failed)}" if failed else api.detail(response)
