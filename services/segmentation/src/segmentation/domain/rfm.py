"""RFM scores 1–5 against quintile breakpoints frozen at recalibration, and the R×F segment. Pure.

R = days since the last order (fewer is better), F = number of orders, M = net amount. At a
recalibration every customer with orders is ranked best first on each measure, and for each score
s = 2…5 the breakpoint is the value at rank ⌈(6 − s) × N / 5⌉: score 5 is the top fifth, score ≥ 4 the
top two fifths, and so on. A customer's score is 1 + the number of breakpoints they reach
("at least as good as"), so scoring is monotone and needs only the four frozen values per measure.

Ties get the same score, the higher one — except on F, which DESIGN says is broken by rank: order
counts tie massively (most customers have one or two orders), which would collapse the quintiles. F is
therefore ranked on the pair (orders, net amount): among customers with equal order counts, the one
who spent more ranks higher. The F breakpoints are stored as such pairs, so a live customer between
recalibrations is placed by the same rule. Only customers equal on both orders and net still tie,
and they share the higher score.

With N customers, ⌈N/5⌉ score 5 on each measure and, on distinct values, exactly ⌈k N/5⌉ score at least
6 − k. There is nothing to rank before the first customer orders: callers leave RFM unscored until a
recalibration with N ≥ 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from segmentation.domain.policy import RfmPolicy

T = TypeVar("T")


@dataclass(frozen=True)
class RfmObservation:
    """One customer's measures at recalibration time."""

    recency_days: int
    frequency: int
    monetary: Decimal


@dataclass(frozen=True)
class RfmBreakpoints:
    """Frozen breakpoints, index 0…3 for scores 2…5 (so each tuple runs from easiest to hardest).

    R ≥ s iff days ≤ ``recency[s-2]``; F ≥ s iff (orders, net) ≥ ``frequency[s-2]``;
    M ≥ s iff net ≥ ``monetary[s-2]``.
    """

    recency: tuple[int, int, int, int]
    frequency: tuple[tuple[int, Decimal], tuple[int, Decimal], tuple[int, Decimal], tuple[int, Decimal]]
    monetary: tuple[Decimal, Decimal, Decimal, Decimal]
    population: int

    def as_dict(self) -> dict[str, list[str]]:
        """A JSON-friendly form for recording the recalibration (decimals as strings)."""
        return {
            "recency_days": [str(b) for b in self.recency],
            "frequency": [f"{orders}/{net}" for orders, net in self.frequency],
            "monetary": [str(b) for b in self.monetary],
        }


class RfmScores(NamedTuple):
    r: int
    f: int
    m: int


def compute_breakpoints(population: Sequence[RfmObservation]) -> RfmBreakpoints:
    """Quintile breakpoints over every customer with orders; refuses an empty population."""
    if not population:
        raise ValueError("RFM breakpoints need at least one customer with orders")
    recency = _breakpoints([o.recency_days for o in population], best_first=lambda v: v)
    frequency = _breakpoints([(o.frequency, o.monetary) for o in population], best_first=_negate_pair)
    monetary = _breakpoints([o.monetary for o in population], best_first=lambda v: -v)
    return RfmBreakpoints(recency=recency, frequency=frequency, monetary=monetary, population=len(population))


def _negate_pair(pair: tuple[int, Decimal]) -> tuple[int, Decimal]:
    return (-pair[0], -pair[1])


def _breakpoints(values: list[T], best_first: Callable[[T], Any]) -> tuple[T, T, T, T]:
    """The values at ranks ⌈(6 − s) N / 5⌉ (best first) for s = 2, 3, 4, 5."""
    ranked = sorted(values, key=best_first)
    n = len(ranked)
    two, three, four, five = (ranked[math.ceil((6 - s) * n / 5) - 1] for s in (2, 3, 4, 5))
    return two, three, four, five


def score(recency_days: int, frequency: int, monetary: Decimal, breakpoints: RfmBreakpoints) -> RfmScores:
    """R, F and M scores 1–5 of one customer against frozen breakpoints."""
    r = 1 + sum(1 for b in breakpoints.recency if recency_days <= b)
    f = 1 + sum(1 for b in breakpoints.frequency if (frequency, monetary) >= b)
    m = 1 + sum(1 for b in breakpoints.monetary if monetary >= b)
    return RfmScores(r=r, f=f, m=m)


def segment(r: int, f: int, grid: RfmPolicy) -> str:
    """The code of the segment owning cell (r, f) in the versioned rule table, e.g. ``"champions"``."""
    return grid.segment_of(r, f).code
