"""What "now" is for a service: the wall clock, or — for demos of historical data and for tests — a clock
that starts at a given instant and runs in real time from there (``<SERVICE>_CLOCK_START``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

Clock = Callable[[], datetime]


def running_from(start: datetime) -> Clock:
    """A clock that reads ``start`` now and advances in real time (monotonic: immune to wall-clock steps)."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)
