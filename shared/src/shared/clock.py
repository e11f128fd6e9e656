"""What "now" is for a service: the wall clock, or — for demos of historical data and for tests — a clock
that starts at a given instant and runs in real time from there (``<SERVICE>_CLOCK_START``, optionally
anchored at the real instant it read that start, ``<SERVICE>_CLOCK_ANCHOR``); and the rule for instants a
caller gives (an order's ``placed_at``, a complaint's ``filed_at``, …): not in the future."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

from shared.events.envelope import EARLIEST  # the contract's earliest instant: a request may give no earlier one
from shared.eventsourcing.aggregate import FieldRuleViolation

Clock = Callable[[], datetime]


def running_from(start: datetime, anchor: datetime | None = None) -> Clock:
    """A clock that read ``start`` at the real instant ``anchor`` and advances in real time; without an
    anchor it reads ``start`` now, when it is made.

    The anchor is what lets processes share one simulated timeline: every service of a demo given the same
    start and anchor reads the same time, and a restarted one continues where the others are instead of
    going back by however long it had run. The time elapsed since the anchor is taken from the wall clock
    once, here; from then on the clock advances monotonically (immune to wall-clock steps)."""
    origin = time.monotonic()
    before = timedelta(0) if anchor is None else datetime.now(UTC) - anchor
    return lambda: start + before + timedelta(seconds=time.monotonic() - origin)


#: How far ahead of the service's clock an instant a caller gives may be (callers' clocks drift a little).
CLOCK_SKEW = timedelta(minutes=5)


class InTheFuture(FieldRuleViolation):
    """An instant a caller gave (when something happened) lies ahead of the service's clock."""

    def __init__(self, field: str, at: datetime, now: datetime) -> None:
        super().__init__(
            f"{field} {iso(at)} is in the future (the service's clock reads {iso(now)}; "
            f"{CLOCK_SKEW.total_seconds() / 60:g} minutes of clock skew are tolerated)",
            field=field,
            code="in_the_future",
            value=iso(at),
        )


def dated(given: datetime | None, now: datetime, *, field: str) -> datetime:
    """When something happened: ``given`` (history entered after the fact) unless it lies beyond
    :data:`CLOCK_SKEW` ahead of ``now`` (:class:`InTheFuture`, a 422 naming ``field``); ``now`` if absent."""
    if given is None:
        return now
    if given > now + CLOCK_SKEW:
        raise InTheFuture(field, given, now)
    return given


def _given_instant(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 or 9999-12-31T23:00:00-05:00: no such instant in UTC
        raise ValueError("the instant is out of the range of dates") from None
    if value < EARLIEST:
        raise ValueError(f"the instant is before {iso(EARLIEST)}, the earliest accepted")
    return value


#: An instant a caller gives in a request (with its UTC offset), kept in UTC, from :data:`EARLIEST` on (a
#: 422 naming the field otherwise). Whether it may lie in the future is the command's rule (:func:`dated`).
GivenInstant = Annotated[AwareDatetime, AfterValidator(_given_instant)]


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
