"""RFM: quintile breakpoints frozen at recalibration, scores 1–5, and the versioned R×F grid."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmentation.domain.policy import DEFAULT_SEGMENTS, PolicyError, RfmPolicy, parse_policy
from segmentation.domain.rfm import RfmObservation, RfmScores, compute_breakpoints, score, segment

pytestmark = pytest.mark.unit

GRID = RfmPolicy()

# DESIGN §4's grid, cell by cell: rows R5 … R1, columns F1 … F5.
EXPECTED_GRID = """
R5: new               potential_loyalists potential_loyalists champions champions
R4: promising         potential_loyalists potential_loyalists loyal     loyal
R3: about_to_sleep    about_to_sleep      need_attention      loyal     loyal
R2: hibernating       hibernating         at_risk             at_risk   cant_lose
R1: hibernating       hibernating         at_risk             at_risk   cant_lose
"""


def _expected_cells() -> list[tuple[int, int, str]]:
    cells = []
    for row in EXPECTED_GRID.strip().splitlines():
        label, names = row.split(":")
        cells += [(int(label[1]), f, name) for f, name in enumerate(names.split(), start=1)]
    return cells


@pytest.mark.parametrize(("r", "f", "name"), _expected_cells())
def test_the_default_grid_names_each_cell_as_design_says(r: int, f: int, name: str) -> None:
    assert segment(r, f, GRID) == name


def test_the_default_grid_is_an_exact_partition_of_the_25_cells() -> None:
    owners = {
        (r, f): [s.code for s in DEFAULT_SEGMENTS if (r, f) in s.cells()] for r in range(1, 6) for f in range(1, 6)
    }

    assert all(len(codes) == 1 for codes in owners.values()), owners
    assert sum(len(s.cells()) for s in DEFAULT_SEGMENTS) == 25


def test_every_default_segment_has_a_code_and_a_readable_label() -> None:
    assert all(s.code and s.label.strip() for s in DEFAULT_SEGMENTS)
    assert len({s.code for s in DEFAULT_SEGMENTS}) == len(DEFAULT_SEGMENTS)
    assert GRID.grid_version == "rfm-grid-v1"


def _default_rows() -> list[dict[str, Any]]:
    return [s.model_dump(mode="json") for s in DEFAULT_SEGMENTS]


def _with(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rfm": {"grid_version": "test", "segments": rows}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows[:-1], "policy.rfm.segments: cells not covered: R1 F1, R1 F2, R2 F1, R2 F2"),
        (
            lambda rows: [*rows, {"code": "everyone", "label": "Everyone", "r": [5], "f": [1]}],
            "policy.rfm.segments: cell R5 F1 is in both new and everyone",
        ),
        (
            lambda rows: [*rows[:-1], {**rows[-1], "code": "new"}],
            "policy.rfm.segments: code 'new' appears twice",
        ),
        (lambda rows: [{**rows[0], "label": "  "}, *rows[1:]], "policy.rfm.segments[0].label: String should have"),
        (lambda rows: [{**rows[0], "code": "Champions!"}, *rows[1:]], "policy.rfm.segments[0].code: String should"),
        (lambda rows: [{**rows[0], "r": [6]}, *rows[1:]], "policy.rfm.segments[0].r[0]: Input should be less than"),
        (lambda rows: [{**rows[0], "f": []}, *rows[1:]], "policy.rfm.segments[0].f: Tuple should have at least 1"),
    ],
)
def test_a_grid_that_is_not_an_exact_partition_is_refused_by_the_policy(change: Any, message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(_with(change(_default_rows())))

    assert str(refused.value).startswith(message)


def test_another_exact_partition_is_accepted_with_its_own_version() -> None:
    rows = [
        {"code": "recent", "label": "Recent", "r": [4, 5], "f": [1, 2, 3, 4, 5]},
        {"code": "fading", "label": "Fading", "r": [1, 2, 3], "f": [1, 2, 3, 4, 5]},
    ]

    policy = parse_policy(_with(rows))

    assert segment(5, 1, policy.rfm) == "recent"
    assert segment(3, 5, policy.rfm) == "fading"
    assert policy.rfm.grid_version == "test"


@pytest.mark.parametrize(("r", "f"), [(0, 3), (3, 6)])
def test_a_score_outside_1_to_5_has_no_segment(r: int, f: int) -> None:
    with pytest.raises(ValueError, match="not a cell"):
        segment(r, f, GRID)


# Ten customers: recency 1…10 days, monetary 10…100; order counts tie heavily (six have one order).
TEN = [
    RfmObservation(recency_days=days, frequency=orders, monetary=Decimal(net))
    for days, orders, net in [
        (1, 5, 100),
        (2, 3, 90),
        (3, 2, 80),
        (4, 2, 70),
        (5, 1, 60),
        (6, 1, 50),
        (7, 1, 40),
        (8, 1, 30),
        (9, 1, 20),
        (10, 1, 10),
    ]
]


def test_breakpoints_are_the_values_at_ranks_of_the_quintile_boundaries() -> None:
    breakpoints = compute_breakpoints(TEN)

    # Ranks ⌈4N/5⌉, ⌈3N/5⌉, ⌈2N/5⌉, ⌈N/5⌉ = 8, 6, 4, 2 counted best first.
    assert breakpoints.recency == (8, 6, 4, 2)
    assert breakpoints.monetary == (30, 50, 70, 90)
    assert breakpoints.frequency == ((1, 30), (1, 50), (2, 70), (3, 90))
    assert breakpoints.population == 10


@pytest.mark.parametrize(
    ("days", "orders", "net", "expected"),
    [
        (1, 5, "100", (5, 5, 5)),
        (2, 3, "90", (5, 5, 5)),
        (3, 2, "80", (4, 4, 4)),
        (6, 1, "50", (3, 3, 3)),  # one order, but the sixth-highest net among one-order customers: F3
        (8, 1, "30", (2, 2, 2)),
        (9, 1, "20", (1, 1, 1)),  # one order and a low net: F1
        (10, 1, "10", (1, 1, 1)),
        (0, 7, "5000", (5, 5, 5)),  # a live customer beyond every breakpoint
        (400, 0, "-5", (1, 1, 1)),
        (4, 1, "85", (4, 3, 4)),  # one order ties on F with many; its net places it at F3
    ],
)
def test_scores_count_the_frozen_breakpoints_a_customer_reaches(
    days: int, orders: int, net: str, expected: tuple[int, int, int]
) -> None:
    assert score(days, orders, Decimal(net), compute_breakpoints(TEN)) == RfmScores(*expected)


def test_ties_on_frequency_are_broken_by_net_amount_so_one_order_customers_spread_over_scores() -> None:
    breakpoints = compute_breakpoints(TEN)

    f_scores = [score(o.recency_days, o.frequency, o.monetary, breakpoints).f for o in TEN if o.frequency == 1]

    assert f_scores == [3, 3, 2, 2, 1, 1]


def test_customers_equal_on_every_measure_share_the_higher_score() -> None:
    population = [RfmObservation(10, 2, Decimal(100))] * 3 + [RfmObservation(50, 1, Decimal(5))] * 7

    breakpoints = compute_breakpoints(population)

    assert score(10, 2, Decimal(100), breakpoints) == RfmScores(5, 5, 5)
    # The seven tie from rank 4 to 10; rank 4 reaches score 4, so all seven score 4.
    assert score(50, 1, Decimal(5), breakpoints) == RfmScores(4, 4, 4)


def test_a_single_customer_scores_five_on_everything() -> None:
    only = RfmObservation(30, 1, Decimal(200))

    assert score(30, 1, Decimal(200), compute_breakpoints([only])) == RfmScores(5, 5, 5)


def test_there_are_no_breakpoints_without_customers() -> None:
    with pytest.raises(ValueError, match="at least one customer"):
        compute_breakpoints([])


def test_breakpoints_are_recorded_as_strings() -> None:
    assert compute_breakpoints(TEN).as_dict() == {
        "recency_days": ["8", "6", "4", "2"],
        "frequency": ["1/30", "1/50", "2/70", "3/90"],
        "monetary": ["30", "50", "70", "90"],
    }


# -- properties --------------------------------------------------------------------------------

observations = st.builds(
    RfmObservation,
    recency_days=st.integers(min_value=0, max_value=2000),
    frequency=st.integers(min_value=1, max_value=300),
    monetary=st.decimals(min_value=-1000, max_value=10**7, places=2, allow_nan=False, allow_infinity=False),
)


@given(st.lists(observations, min_size=1, max_size=100), observations)
def test_every_score_is_between_1_and_5(population: list[RfmObservation], probe: RfmObservation) -> None:
    scores = score(probe.recency_days, probe.frequency, probe.monetary, compute_breakpoints(population))

    assert all(1 <= s <= 5 for s in scores)


@given(st.lists(observations, min_size=1, max_size=100), observations, observations)
def test_a_better_measure_never_scores_lower(
    population: list[RfmObservation], a: RfmObservation, b: RfmObservation
) -> None:
    breakpoints = compute_breakpoints(population)
    sa = score(a.recency_days, a.frequency, a.monetary, breakpoints)
    sb = score(b.recency_days, b.frequency, b.monetary, breakpoints)

    if a.recency_days <= b.recency_days:
        assert sa.r >= sb.r
    if (a.frequency, a.monetary) >= (b.frequency, b.monetary):
        assert sa.f >= sb.f
    if a.monetary >= b.monetary:
        assert sa.m >= sb.m


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=300, unique=True))
def test_on_distinct_values_each_quintile_holds_its_share(values: list[int]) -> None:
    population = [RfmObservation(v, v + 1, Decimal(v)) for v in values]
    breakpoints = compute_breakpoints(population)
    n = len(values)

    scores = [score(o.recency_days, o.frequency, o.monetary, breakpoints) for o in population]

    for at_least in range(2, 6):
        expected = math.ceil((6 - at_least) * n / 5)
        assert sum(1 for s in scores if s.m >= at_least) == expected
        assert sum(1 for s in scores if s.f >= at_least) == expected
        assert sum(1 for s in scores if s.r >= at_least) == expected
