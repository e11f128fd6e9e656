"""Fault-injection points: crash a process at one exact place, for the fault tests only.

A point is a named call, ``fault_point("relay_exit_after_ack")``, that does nothing unless the
environment variable ``TIERSTREAM_FAULT_INJECT`` names it; then the process dies on the spot with
``os._exit(137)`` — like a SIGKILL: no ``finally``, no rollback sent, no flush. Production refuses it
twice: settings validation rejects the variable when ``TIERSTREAM_ENV=production`` (the process does not
start), and a point reached in production raises instead of exiting.

Points:

``relay_exit_after_ack``
    :class:`shared.messaging.relay.OutboxRelay` — after Kafka acknowledged a batch, before the rows are
    marked sent (the batch transaction never commits, so the next relay republishes the batch).
"""

from __future__ import annotations

import os

from shared.settings import FAULT_INJECT_ENV

KILLED_EXIT_CODE = 137  # 128 + SIGKILL, what a shell reports for a killed process


class FaultInjectionRefused(RuntimeError):
    """A fault point was armed in production."""


def fault_point(name: str) -> None:
    """Die here (``os._exit(137)``) if ``TIERSTREAM_FAULT_INJECT`` names this point; otherwise nothing."""
    armed = os.environ.get(FAULT_INJECT_ENV)
    if armed != name:
        return
    if os.environ.get("TIERSTREAM_ENV") == "production":
        raise FaultInjectionRefused(f"{FAULT_INJECT_ENV}={name} is refused in production")
    os._exit(KILLED_EXIT_CODE)
