"""Value tiers: percentile and absolute cut points, grading, and demotion hysteresis."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmentation.domain.cutpoints import (
    CutPoints,
    HysteresisState,
    apply_hysteresis,
    compute_cut_points,
    grade,
    lowered,
)
from segmentation.domain.policy import Hysteresis, TierMode, TierPolicy
from shared.events.vocabulary import ValueTier

pytestmark = pytest.mark.unit

PERCENTILE = TierPolicy()
ABSOLUTE = TierPolicy(mode=TierMode.ABSOLUTE)
VIP, KEY, NORMAL, SMALL, PROSPECT = (
    ValueTier.VIP,
    ValueTier.KEY,
    ValueTier.NORMAL,
    ValueTier.SMALL,
    ValueTier.PROSPECT,
)
RANK = {SMALL: 1, NORMAL: 2, KEY: 3, VIP: 4}


def decimals(*values: int) -> list[Decimal]:
    return [Decimal(v) for v in values]


@pytest.mark.parametrize(
    ("values", "vip", "key", "normal"),
    [
        # N = 20: ⌈1⌉ = 1 vip (20), ⌈5⌉ = 5 key-or-vip (down to 16), ⌈1⌉ = 1 small (below 2).
        (decimals(*range(1, 21)), 20, 16, 2),
        # N = 100: 5 vip (≥ 96), 25 key-or-vip (≥ 76), 5 small (1…5, normal from 6).
        (decimals(*range(1, 101)), 96, 76, 6),
        # N = 7: ⌈0.35⌉ = 1 vip, ⌈1.75⌉ = 2 key-or-vip, ⌈0.35⌉ = 1 small.
        (decimals(7, 3, 5, 1, 6, 2, 4), 7, 6, 2),
        # N = 1: the only customer is vip; every floor is their value.
        (decimals(100), 100, 100, 100),
        # N = 2: the larger is vip, the smaller small (the normal floor is clamped to the key floor).
        (decimals(10, 20), 20, 20, 20),
        # Ties at the top go up: three equal leaders are all vip although ⌈5 % × 20⌉ = 1.
        (decimals(50, 50, 50, *range(1, 18)), 50, 16, 2),
        # Ties at the bottom go up too: the two lowest tie, so nobody is small.
        (decimals(1, 1, *range(2, 20)), 19, 15, 1),
        # Negative nets (returns above orders) are ranked like any value: N = 5, ⌈1.25⌉ = 2 key-or-vip.
        (decimals(-30, -10, 0, 10, 20), 20, 10, -10),
    ],
)
def test_percentile_cut_points_are_the_values_at_the_documented_ranks(
    values: list[Decimal], vip: int, key: int, normal: int
) -> None:
    cut_points = compute_cut_points(values, PERCENTILE)

    assert (cut_points.vip, cut_points.key, cut_points.normal) == (vip, key, normal)
    assert cut_points.population == len(values)
    assert cut_points.mode is TierMode.PERCENTILE


def test_three_tied_leaders_of_twenty_are_all_vip() -> None:
    values = decimals(50, 50, 50, *range(1, 18))
    cut_points = compute_cut_points(values, PERCENTILE)

    tiers = [grade(v, 1, cut_points) for v in values]

    assert tiers.count(VIP) == 3


def test_percentile_mode_without_customers_falls_back_to_the_absolute_thresholds() -> None:
    cut_points = compute_cut_points([], PERCENTILE)

    assert cut_points == CutPoints(TierMode.ABSOLUTE, Decimal(50000), Decimal(10000), Decimal(500), population=0)


def test_absolute_mode_ignores_the_distribution() -> None:
    cut_points = compute_cut_points(decimals(1, 2, 3), ABSOLUTE)

    assert (cut_points.vip, cut_points.key, cut_points.normal) == (50000, 10000, 500)
    assert cut_points.population == 3


def test_cut_points_are_recorded_as_decimal_strings_per_tier() -> None:
    cut_points = CutPoints(TierMode.PERCENTILE, Decimal("1000.50"), Decimal(500), Decimal(-2), population=9)

    assert cut_points.as_dict() == {VIP: "1000.50", KEY: "500", NORMAL: "-2"}


CUTS = CutPoints(TierMode.PERCENTILE, vip=Decimal(1000), key=Decimal(500), normal=Decimal(100), population=40)


@pytest.mark.parametrize(
    ("net", "live_orders", "tier"),
    [
        ("1000", 1, VIP),
        ("999.99", 1, KEY),
        ("500", 3, KEY),
        ("100", 1, NORMAL),
        ("99.99", 1, SMALL),
        ("-5", 2, SMALL),
        ("5000", 0, PROSPECT),
        ("0", 0, PROSPECT),
    ],
)
def test_grading_compares_net_with_each_lower_bound(net: str, live_orders: int, tier: ValueTier) -> None:
    assert grade(Decimal(net), live_orders, CUTS) == tier


@pytest.mark.parametrize(
    ("net", "tier"),
    [("50000", VIP), ("49999", KEY), ("10000", KEY), ("500", NORMAL), ("499.99", SMALL)],
)
def test_absolute_mode_grades_by_the_configured_thresholds(net: str, tier: ValueTier) -> None:
    assert grade(Decimal(net), 1, compute_cut_points([], ABSOLUTE)) == tier


# Margin 10 %: the floors a held tier must stay above are vip 900, key 450, normal 90.
MARGIN = Hysteresis(margin_pct=Decimal(10), consecutive_recalibrations=2)


@pytest.mark.parametrize(
    ("previous", "candidate", "net", "below", "at_recalibration", "tier", "below_after"),
    [
        (KEY, VIP, "1200", 0, False, VIP, 0),  # promotion is immediate
        (VIP, KEY, "950", 0, False, VIP, 0),  # within the margin: held
        (VIP, KEY, "899", 0, False, KEY, 0),  # through the margin: demoted at once
        (VIP, NORMAL, "440", 0, False, NORMAL, 0),  # through two margins: down to what the lowered cuts give
        (KEY, SMALL, "95", 0, False, NORMAL, 0),  # drops only as far as the lowered cuts say
        (VIP, KEY, "950", 0, True, VIP, 1),  # first recalibration below: held, counted
        (VIP, KEY, "950", 1, True, KEY, 0),  # second recalibration in a row below: demoted
        (VIP, KEY, "950", 1, False, VIP, 1),  # a live grading below keeps the count
        (VIP, VIP, "1000", 1, False, VIP, 0),  # back at the tier: the count restarts
        (NORMAL, SMALL, "95", 0, False, NORMAL, 0),
        (NORMAL, SMALL, "89", 0, False, SMALL, 0),
        (KEY, PROSPECT, "0", 1, False, PROSPECT, 0),  # no live orders is a fact, not a grade
        (PROSPECT, SMALL, "5", 0, False, SMALL, 0),  # a first order is never held back
        (None, NORMAL, "200", 0, False, NORMAL, 0),  # first grading
    ],
)
def test_demotion_waits_for_the_margin_or_consecutive_recalibrations(
    previous: ValueTier | None,
    candidate: ValueTier,
    net: str,
    below: int,
    at_recalibration: bool,
    tier: ValueTier,
    below_after: int,
) -> None:
    result = apply_hysteresis(
        previous, candidate, Decimal(net), CUTS, MARGIN, HysteresisState(below), at_recalibration=at_recalibration
    )

    assert result == (tier, HysteresisState(below_after))


def test_with_one_recalibration_required_any_recalibration_below_demotes() -> None:
    policy = Hysteresis(margin_pct=Decimal(10), consecutive_recalibrations=1)

    result = apply_hysteresis(VIP, KEY, Decimal(950), CUTS, policy, HysteresisState(), at_recalibration=True)

    assert result == (KEY, HysteresisState())


def test_without_a_margin_a_live_grading_below_demotes_at_once() -> None:
    policy = Hysteresis(margin_pct=Decimal(0), consecutive_recalibrations=2)

    assert apply_hysteresis(KEY, NORMAL, Decimal(499), CUTS, policy, HysteresisState()) == (NORMAL, HysteresisState())


def test_the_margin_lowers_a_negative_floor_by_its_size() -> None:
    cuts = CutPoints(TierMode.PERCENTILE, Decimal(100), Decimal(0), Decimal(-100), population=5)

    assert lowered(cuts, Decimal(10)) == CutPoints(
        TierMode.PERCENTILE, Decimal(90), Decimal(0), Decimal(-110), population=5
    )


# -- properties --------------------------------------------------------------------------------

nets = st.decimals(min_value=-10_000, max_value=1_000_000, places=2, allow_nan=False, allow_infinity=False)


@given(st.lists(st.integers(min_value=-1000, max_value=100_000), min_size=1, max_size=400, unique=True))
def test_on_distinct_values_the_tier_counts_follow_the_shares_exactly(values: list[int]) -> None:
    population = decimals(*values)
    n = len(population)
    cut_points = compute_cut_points(population, PERCENTILE)

    tiers = [grade(v, 1, cut_points) for v in population]

    vip, key_or_vip, small = math.ceil(n * 5 / 100), math.ceil(n * 25 / 100), math.ceil(n * 5 / 100)
    assert tiers.count(VIP) == vip
    assert tiers.count(VIP) + tiers.count(KEY) == key_or_vip
    assert tiers.count(SMALL) == min(small, n - key_or_vip)


@given(st.lists(nets, min_size=1, max_size=200), st.randoms())
def test_cut_points_do_not_depend_on_the_order_of_the_population(values: list[Decimal], rng: random.Random) -> None:
    shuffled = list(values)
    rng.shuffle(shuffled)

    assert compute_cut_points(shuffled, PERCENTILE) == compute_cut_points(values, PERCENTILE)


@given(st.lists(nets, min_size=1, max_size=200))
def test_cut_points_never_rise_from_vip_to_key_to_normal(values: list[Decimal]) -> None:
    cut_points = compute_cut_points(values, PERCENTILE)

    assert cut_points.vip >= cut_points.key >= cut_points.normal


@given(st.lists(nets, min_size=1, max_size=200), nets, nets)
def test_grading_is_monotone_in_net(values: list[Decimal], a: Decimal, b: Decimal) -> None:
    cut_points = compute_cut_points(values, PERCENTILE)
    low, high = sorted((a, b))

    assert RANK[grade(low, 1, cut_points)] <= RANK[grade(high, 1, cut_points)]


graded = st.sampled_from([VIP, KEY, NORMAL, SMALL])


@given(graded, nets, st.integers(min_value=0, max_value=3), st.booleans(), st.lists(nets, min_size=1, max_size=50))
def test_hysteresis_keeps_the_tier_between_the_graded_and_the_previous_one(
    previous: ValueTier, net: Decimal, below: int, at_recalibration: bool, values: list[Decimal]
) -> None:
    cut_points = compute_cut_points(values, PERCENTILE)
    candidate = grade(net, 1, cut_points)

    tier, _ = apply_hysteresis(
        previous, candidate, net, cut_points, MARGIN, HysteresisState(below), at_recalibration=at_recalibration
    )

    assert RANK[candidate] <= RANK[tier] <= max(RANK[previous], RANK[candidate])
