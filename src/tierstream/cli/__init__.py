"""``tierstream`` — run the local stack, load data, look inside.

tierstream up        start PostgreSQL, Kafka and the four services (idempotent; a service it starts again
                     gets the settings the stack was started with, e.g. the demo's clock), print URLs
tierstream down      stop everything ``up`` started, and forget those settings
tierstream status    what runs where, and what is not ready (exit code 1 then)
tierstream demo      up + load the Online Retail data set + show a few customers' segments
tierstream load      load the data set into a running stack
tierstream segment   one customer's segment
tierstream streams   one customer's event streams (customer, orders, complaints) as one timeline
tierstream recalibrate  recompute tier cut points and RFM breakpoints now
tierstream rebuild   replay every topic into fresh segmentation tables and compare with the live ones
tierstream tail      print events arriving on a topic
tierstream deadletters list | redrive   inspect dead letters; re-drive them once their cause is fixed

Every call to a service API sends ``Authorization: Bearer $TIERSTREAM_TOKEN`` (default ``dev-admin``, the
development token; see docs/api.md). Every failure — a service that does not answer or answers outside 2xx,
a data file that is not the data set, a Kafka topic that is not there — ends the command with a message on
stderr and exit code 1 (2 for a bad option, as typer reports it), not a traceback.
"""

from __future__ import annotations

from tierstream import deadletters_cli
from tierstream.cli import base, data_commands, inspect_commands, rebuild_command, stack_commands
from tierstream.cli.base import Command, Group, app, fail

__all__ = ["app", "base", "data_commands", "inspect_commands", "main", "rebuild_command", "stack_commands"]

app.add_typer(deadletters_cli.build_app(Command, fail), name="deadletters", cls=Group)


def main() -> None:
    app()
