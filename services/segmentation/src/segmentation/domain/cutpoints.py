"""Value tiers (客户分级): cut points, grading, and demotion hysteresis. Pure functions, no I/O.

Cut points are the *lower bounds* of net contribution for vip, key and normal; below ``normal`` is small,
and a customer without live orders is a prospect (untiered). They are computed at a recalibration and
frozen until the next, so live events are graded against the same numbers (DESIGN §4).

Percentile mode, over the N customers with live orders (the caller passes their trailing-window net):

* ``vip`` = the value at rank ⌈vip% × N⌉ counting from the largest; ``key`` likewise with key%.
  So "top 5 %" means: net ≥ the ⌈0.05 N⌉-th largest value.
* ``normal`` = the value at rank ⌈small% × N⌉ + 1 counting from the smallest: the ⌈0.05 N⌉ lowest are small.
* Ties go up: equal nets always get the same tier, the higher one (a tie at a boundary can make the
  upper tier slightly larger than its share, never smaller). On N distinct values the counts are exact:
  ⌈0.05 N⌉ vip, ⌈0.25 N⌉ key-or-vip, ⌈0.05 N⌉ small (fewer only when N is too small for all tiers).
* Tiers are assigned top down, so with tiny populations the upper tiers win (N = 1 gives one vip).
* With no graded customer yet (N = 0) the absolute thresholds stand in until the first recalibration.

Hysteresis (promotion is always immediate; demotion needs one of two things):

1. *Margin*: the customer keeps a tier while net stays at or above its floor lowered by
   ``margin_pct`` % of the floor's size (floor − |floor| × margin). Falling through that, the customer
   drops at once to the tier the lowered cut points give.
2. *Persistence*: a customer graded below their tier at ``consecutive_recalibrations`` recalibrations in
   a row (without being back at or above it at any grading in between) drops to the graded tier.

The margin stops flapping on noise around a boundary; persistence makes sure a customer who settled just
below a boundary is demoted eventually, so tier shares do not drift. Losing all live orders (prospect)
is a fact, not a grade, and applies at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from segmentation.domain.policy import Hysteresis, TierMode, TierPolicy
from shared.events.vocabulary import ValueTier

#: Graded tiers from lowest to highest; prospect is outside the order (untiered).
_ORDER: tuple[ValueTier, ...] = (ValueTier.SMALL, ValueTier.NORMAL, ValueTier.KEY, ValueTier.VIP)
_RANK = {tier: index for index, tier in enumerate(_ORDER)}


@dataclass(frozen=True)
class CutPoints:
    """Frozen lower bounds of net contribution per tier, and how many customers they were computed on."""

    mode: TierMode
    vip: Decimal
    key: Decimal
    normal: Decimal
    population: int

    def as_dict(self) -> dict[ValueTier, str]:
        """Tier → lower bound as a decimal string, as recorded in tier history and events."""
        return {ValueTier.VIP: str(self.vip), ValueTier.KEY: str(self.key), ValueTier.NORMAL: str(self.normal)}


@dataclass(frozen=True)
class HysteresisState:
    """What demotion hysteresis remembers per customer: recalibrations in a row graded below the tier."""

    recalibrations_below: int = 0


def absolute_cut_points(policy: TierPolicy, population: int = 0) -> CutPoints:
    """The configured absolute thresholds as cut points (absolute mode, or percentile before N > 0)."""
    thresholds = policy.absolute
    return CutPoints(
        mode=TierMode.ABSOLUTE,
        vip=thresholds.vip,
        key=thresholds.key,
        normal=thresholds.normal,
        population=population,
    )


def compute_cut_points(net_values: Sequence[Decimal], policy: TierPolicy) -> CutPoints:
    """Cut points for a recalibration over the nets of the customers with live orders (order irrelevant)."""
    n = len(net_values)
    if policy.mode is TierMode.ABSOLUTE or n == 0:
        return absolute_cut_points(policy, n)
    shares = policy.percentile
    descending = sorted(net_values, reverse=True)
    vip = descending[_count(shares.vip, n) - 1]
    key = descending[_count(shares.key, n) - 1]
    # The (⌈small% N⌉ + 1)-th smallest; clamped so that a floor never exceeds the floor above it.
    normal = min(descending[max(n - 1 - _count(shares.small, n), 0)], key)
    return CutPoints(mode=TierMode.PERCENTILE, vip=vip, key=key, normal=normal, population=n)


def _count(share_pct: Decimal, n: int) -> int:
    """⌈share % × n⌉: how many customers a share covers, at least one for any share > 0."""
    return math.ceil(share_pct * n / 100)


def grade(net: Decimal, live_orders: int, cut_points: CutPoints) -> ValueTier:
    """The tier ``net`` earns against ``cut_points``; prospect without live orders. Monotone in ``net``."""
    if live_orders <= 0:
        return ValueTier.PROSPECT
    if net >= cut_points.vip:
        return ValueTier.VIP
    if net >= cut_points.key:
        return ValueTier.KEY
    if net >= cut_points.normal:
        return ValueTier.NORMAL
    return ValueTier.SMALL


def apply_hysteresis(
    previous_tier: ValueTier | None,
    candidate_tier: ValueTier,
    net: Decimal,
    cut_points: CutPoints,
    policy: Hysteresis,
    state: HysteresisState,
    *,
    at_recalibration: bool = False,
) -> tuple[ValueTier, HysteresisState]:
    """The tier to keep given the freshly graded ``candidate_tier``, and the state to store with it.

    ``at_recalibration`` is true when this grading is part of a recalibration (new cut points for
    everyone), false for a grading triggered by a live event or sweep between recalibrations.
    """
    if (
        previous_tier is None
        or ValueTier.PROSPECT in (previous_tier, candidate_tier)
        or _RANK[candidate_tier] >= _RANK[previous_tier]
    ):
        return candidate_tier, HysteresisState()
    if at_recalibration and state.recalibrations_below + 1 >= policy.consecutive_recalibrations:
        return candidate_tier, HysteresisState()
    held = grade(net, 1, lowered(cut_points, policy.margin_pct))
    if _RANK[held] < _RANK[previous_tier]:
        return held, HysteresisState()
    below = state.recalibrations_below + (1 if at_recalibration else 0)
    return previous_tier, HysteresisState(recalibrations_below=below)


def lowered(cut_points: CutPoints, margin_pct: Decimal) -> CutPoints:
    """Each floor moved down by ``margin_pct`` % of its size: the bounds a held tier must stay above."""

    def down(floor: Decimal) -> Decimal:
        return floor - abs(floor) * margin_pct / 100

    return CutPoints(
        mode=cut_points.mode,
        vip=down(cut_points.vip),
        key=down(cut_points.key),
        normal=down(cut_points.normal),
        population=cut_points.population,
    )
