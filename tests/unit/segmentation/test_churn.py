"""Churn risk: score with reasons and evidence, bands, and the alert life cycle with hysteresis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmentation.domain.churn import (
    Alert,
    AlertState,
    AlertTransition,
    AlertTransitionError,
    ChurnAssessment,
    Reason,
    Signals,
    acknowledge,
    band,
    close,
    next_alert,
    score,
    snooze,
)
from segmentation.domain.policy import ChurnPolicy
from shared.events.vocabulary import OverdueBucket, RiskBand
from shared.eventsourcing.aggregate import DomainError

pytestmark = pytest.mark.unit

POLICY = ChurnPolicy()
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
D = Decimal


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.mark.parametrize(
    ("signals", "expected", "codes"),
    [
        (Signals(), 0, ()),
        (Signals(days_since_last_order=31, cadence_threshold_days=D(30)), 25, ("cadence_breach",)),
        (Signals(days_since_last_order=30, cadence_threshold_days=D(30)), 0, ()),  # at the threshold: no breach
        (Signals(days_since_last_order=None, cadence_threshold_days=None), 0, ()),  # no orders, no cadence
        (Signals(spend_last_90=D(40), spend_previous_90=D(100)), 20, ("spend_down",)),
        (Signals(spend_last_90=D(50), spend_previous_90=D(100)), 0, ()),  # exactly 50 % down is not > 50 %
        (Signals(spend_last_90=D(0), spend_previous_90=D(0)), 0, ()),  # nothing to fall from
        (Signals(complaints_past_sla=2), 15, ("complaint_overdue",)),
        (Signals(complaints_reopened=1), 10, ("complaint_reopened",)),
        (Signals(latest_nps=6), 15, ("detractor_survey",)),
        (Signals(latest_nps=7), 0, ()),
        (Signals(latest_csat=2), 15, ("detractor_survey",)),
        (Signals(latest_csat=3), 0, ()),
        (Signals(latest_nps=0, latest_csat=1), 15, ("detractor_survey",)),  # one survey signal, not two
        (Signals(overdue={OverdueBucket.DAYS_1_30: D(100)}), 5, ("receivables_overdue_1_30",)),
        (Signals(overdue={OverdueBucket.DAYS_31_60: D(1)}), 10, ("receivables_overdue_31_60",)),
        (
            Signals(overdue={OverdueBucket.DAYS_1_30: D(100), OverdueBucket.DAYS_61_90: D(50)}),
            15,
            ("receivables_overdue_61_90",),  # only the oldest bucket counts
        ),
        (Signals(overdue={OverdueBucket.DAYS_90_PLUS: D("0.01")}), 20, ("receivables_overdue_90_plus",)),
        (Signals(overdue={OverdueBucket.DAYS_90_PLUS: D(0)}), 0, ()),
        (Signals(credit_holds=1), 10, ("credit_hold",)),
        (
            Signals(
                days_since_last_order=45,
                cadence_threshold_days=20,
                spend_last_90=D(10),
                spend_previous_90=D(100),
                complaints_past_sla=1,
            ),
            60,
            ("cadence_breach", "spend_down", "complaint_overdue"),
        ),
    ],
)
def test_the_score_adds_the_points_of_each_signal_present(
    signals: Signals, expected: int, codes: tuple[str, ...]
) -> None:
    assessment = score(signals, POLICY)

    assert assessment.score == expected
    assert tuple(r.code for r in assessment.reasons) == codes


EVERYTHING = Signals(
    days_since_last_order=100,
    cadence_threshold_days=20,
    spend_last_90=D(10),
    spend_previous_90=D(100),
    complaints_past_sla=1,
    complaints_reopened=1,
    latest_nps=2,
    overdue={OverdueBucket.DAYS_61_90: D(500)},
    credit_holds=2,
)


def test_all_signals_together_are_capped_at_100() -> None:
    assessment = score(EVERYTHING, POLICY)

    assert sum(r.points for r in assessment.reasons) == 25 + 20 + 15 + 10 + 15 + 15 + 10
    assert assessment.score == 100
    assert assessment.band is RiskBand.HIGH


def test_reasons_come_highest_points_first_then_by_code() -> None:
    codes = [r.code for r in score(EVERYTHING, POLICY).reasons]

    assert codes == [
        "cadence_breach",
        "spend_down",
        "complaint_overdue",
        "detractor_survey",
        "receivables_overdue_61_90",
        "complaint_reopened",
        "credit_hold",
    ]


@pytest.mark.parametrize(
    ("signals", "reason"),
    [
        (
            Signals(days_since_last_order=45, cadence_threshold_days=D("20.5")),
            Reason("cadence_breach", 25, {"days_since_last_order": 45, "threshold_days": "20.5"}),
        ),
        (
            Signals(spend_last_90=D("40.00"), spend_previous_90=D("100.00")),
            Reason("spend_down", 20, {"spend_last_90": "40.0000", "spend_previous_90": "100.0000", "drop_pct": "60.0"}),
        ),
        (Signals(complaints_past_sla=3), Reason("complaint_overdue", 15, {"complaints": 3})),
        (Signals(latest_nps=3, latest_csat=4), Reason("detractor_survey", 15, {"nps": 3})),
        (
            Signals(overdue={OverdueBucket.DAYS_90_PLUS: D("1200.50")}),
            Reason("receivables_overdue_90_plus", 20, {"bucket": "90+", "amount": "1200.5000"}),
        ),
        (Signals(credit_holds=2), Reason("credit_hold", 10, {"orders_on_hold": 2})),
    ],
)
def test_each_reason_carries_its_evidence(signals: Signals, reason: Reason) -> None:
    assert score(signals, POLICY).reasons == (reason,)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, RiskBand.LOW),
        (29, RiskBand.LOW),
        (30, RiskBand.MEDIUM),
        (59, RiskBand.MEDIUM),
        (60, RiskBand.HIGH),
        (100, RiskBand.HIGH),
    ],
)
def test_bands_start_at_their_lower_bounds(value: int, expected: RiskBand) -> None:
    assert band(value, POLICY.bands) is expected


def test_a_signal_configured_at_zero_points_gives_no_reason() -> None:
    policy = ChurnPolicy.model_validate({"points": {"credit_hold": 0}})

    assert score(Signals(credit_holds=3), policy) == ChurnAssessment(0, RiskBand.LOW, ())


# -- alerts ------------------------------------------------------------------------------------


def risk(value: int) -> ChurnAssessment:
    """An assessment with the given score (reasons matter only for the raise)."""
    reasons = (Reason("cadence_breach", value, {}),) if value else ()
    return ChurnAssessment(value, band(value, POLICY.bands), reasons)


def run(scores: list[int], alert: Alert | None = None) -> tuple[Alert | None, list[AlertTransition]]:
    """Assess ``scores`` one hour apart from T0."""
    transitions = []
    for hour, value in enumerate(scores):
        alert, transition = next_alert(alert, risk(value), at(hour), POLICY)
        transitions.append(transition)
    return alert, transitions


N, RAISED, RECURRED, UNSNOOZED, CLEARED = (
    AlertTransition.NONE,
    AlertTransition.RAISED,
    AlertTransition.RECURRED,
    AlertTransition.UNSNOOZED,
    AlertTransition.CLEARED,
)


@pytest.mark.parametrize(
    ("scores", "transitions", "state", "occurrences"),
    [
        ([59], [N], None, None),  # below the high band: nothing
        ([60], [RAISED], AlertState.OPEN, 1),
        ([60, 70, 80], [RAISED, N, N], AlertState.OPEN, 1),  # staying high is the same occurrence
        ([60, 50, 65], [RAISED, N, RECURRED], AlertState.OPEN, 2),  # back to high: an occurrence, no new alert
        ([60, 50, 65, 45, 90], [RAISED, N, RECURRED, N, RECURRED], AlertState.OPEN, 3),
        ([60, 40], [RAISED, N], AlertState.OPEN, 1),  # 40 is not below the clear threshold
        ([60, 39], [RAISED, CLEARED], AlertState.CLOSED, 1),  # recovered: auto-closed
        ([60, 39, 55, 60], [RAISED, CLEARED, N, RAISED], AlertState.OPEN, 1),  # a new alert after recovery
    ],
)
def test_an_alert_is_raised_at_the_high_band_and_cleared_only_below_the_lower_threshold(
    scores: list[int], transitions: list[AlertTransition], state: AlertState | None, occurrences: int | None
) -> None:
    alert, seen = run(scores)

    assert seen == transitions
    assert (alert.state if alert else None) == state
    assert (alert.occurrences if alert else None) == occurrences


def test_a_raised_alert_records_when_score_and_reasons() -> None:
    alert, _ = run([70])

    assert alert == Alert(
        state=AlertState.OPEN,
        raised_at=T0,
        raised_score=70,
        reasons=("cadence_breach",),
        last_score=70,
        last_seen_at=T0,
    )


def test_an_occurrence_updates_when_the_risk_was_last_seen() -> None:
    alert, _ = run([60, 50, 65, 70])

    assert alert is not None
    assert (alert.occurrences, alert.last_seen_at, alert.last_score) == (2, at(3), 70)


def test_an_auto_closed_alert_says_it_recovered() -> None:
    alert, _ = run([60, 20])

    assert alert is not None
    assert (alert.close_reason, alert.closed_at, alert.last_score) == ("recovered", at(1), 20)


def test_an_acknowledged_alert_still_records_occurrences() -> None:
    opened, _ = run([60])
    assert opened is not None
    handled = acknowledge(opened, at(1), by="ops-1")

    alert, transitions = run([50, 70], handled)

    assert transitions == [N, RECURRED]
    assert alert is not None
    assert (alert.state, alert.occurrences, alert.handled_by) == (AlertState.ACKNOWLEDGED, 2, "ops-1")


def test_a_snooze_suppresses_occurrences_until_it_runs_out() -> None:
    opened, _ = run([60])
    assert opened is not None
    snoozed = snooze(opened, until=at(3), now=at(0), by="ops-1")

    alert, transitions = run([50, 70, 55, 65], snoozed)  # hours 0–3; the snooze ends at hour 3

    assert transitions == [N, N, N, UNSNOOZED]
    assert alert is not None
    assert (alert.state, alert.snoozed_until) == (AlertState.OPEN, None)
    assert alert.occurrences == 2  # only the climb at hour 3 counts; the one at hour 1 was snoozed
    assert alert.last_seen_at == at(3)


def test_recovery_closes_a_snoozed_alert() -> None:
    opened, _ = run([60])
    assert opened is not None

    alert, transitions = run([10], snooze(opened, until=at(48), now=at(0), by="ops-1"))

    assert transitions == [CLEARED]
    assert alert is not None
    assert (alert.state, alert.close_reason, alert.snoozed_until) == (AlertState.CLOSED, "recovered", None)


def test_after_a_manual_close_a_new_alert_waits_for_a_recovery_first() -> None:
    opened, _ = run([60])
    assert opened is not None
    closed = close(opened, "called the buyer, order coming", at(1), by="ops-1")

    alert, transitions = run([70, 65, 35, 62], closed)

    assert transitions == [N, N, N, RAISED]
    assert alert is not None
    assert (alert.state, alert.raised_at) == (AlertState.OPEN, at(3))


@pytest.mark.parametrize(
    ("state", "action", "allowed"),
    [
        (AlertState.OPEN, "acknowledge", True),
        (AlertState.SNOOZED, "acknowledge", True),
        (AlertState.ACKNOWLEDGED, "acknowledge", False),
        (AlertState.CLOSED, "acknowledge", False),
        (AlertState.OPEN, "snooze", True),
        (AlertState.ACKNOWLEDGED, "snooze", True),
        (AlertState.SNOOZED, "snooze", True),  # extends the snooze
        (AlertState.CLOSED, "snooze", False),
        (AlertState.OPEN, "close", True),
        (AlertState.ACKNOWLEDGED, "close", True),
        (AlertState.SNOOZED, "close", True),
        (AlertState.CLOSED, "close", False),
    ],
)
def test_operators_may_only_make_the_moves_the_alert_state_allows(
    state: AlertState, action: str, allowed: bool
) -> None:
    alert = replace(_open_alert(), state=state)
    actions: dict[str, Callable[[], Alert]] = {
        "acknowledge": lambda: acknowledge(alert, at(5), by="ops-1"),
        "snooze": lambda: snooze(alert, until=at(29), now=at(5), by="ops-1"),
        "close": lambda: close(alert, "duplicate", at(5), by="ops-1"),
    }

    if allowed:
        after = actions[action]()
        assert (after.handled_at, after.handled_by) == (at(5), "ops-1")
    else:
        with pytest.raises(AlertTransitionError, match=f"cannot {action} an alert that is {state}"):
            actions[action]()


def _open_alert() -> Alert:
    alert, _ = run([60])
    assert alert is not None
    return alert


@pytest.mark.parametrize("until", [at(5), at(4)])
def test_a_snooze_must_end_in_the_future(until: datetime) -> None:
    with pytest.raises(AlertTransitionError, match="not after now"):
        snooze(_open_alert(), until=until, now=at(5), by="ops-1")


@pytest.mark.parametrize("reason", ["", "   "])
def test_closing_by_hand_needs_a_reason(reason: str) -> None:
    with pytest.raises(AlertTransitionError, match="needs a reason"):
        close(_open_alert(), reason, at(5), by="ops-1")


def test_acknowledging_ends_a_snooze() -> None:
    snoozed = snooze(_open_alert(), until=at(24), now=at(1), by="ops-1")

    assert acknowledge(snoozed, at(2), by="ops-2").snoozed_until is None


def test_an_illegal_alert_move_is_a_domain_error_and_a_value_error() -> None:
    assert issubclass(AlertTransitionError, DomainError)
    assert issubclass(AlertTransitionError, ValueError)


# -- properties --------------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)
signals = st.builds(
    Signals,
    days_since_last_order=st.none() | st.integers(min_value=0, max_value=1000),
    cadence_threshold_days=st.none() | st.integers(min_value=14, max_value=400),
    spend_last_90=amounts,
    spend_previous_90=amounts,
    complaints_past_sla=st.integers(min_value=0, max_value=5),
    complaints_reopened=st.integers(min_value=0, max_value=5),
    latest_nps=st.none() | st.integers(min_value=0, max_value=10),
    latest_csat=st.none() | st.integers(min_value=1, max_value=5),
    overdue=st.dictionaries(st.sampled_from(list(OverdueBucket)), amounts, max_size=4),
    credit_holds=st.integers(min_value=0, max_value=3),
)


def _worse(s: Signals, which: str, by: int) -> Signals:
    """``s`` with one signal made worse (or equal) by ``by``."""
    changes = {
        "days": lambda: replace(
            s, days_since_last_order=None if s.days_since_last_order is None else s.days_since_last_order + by
        ),
        "spend_last": lambda: replace(s, spend_last_90=s.spend_last_90 - by),
        "spend_previous": lambda: replace(s, spend_previous_90=s.spend_previous_90 + by),
        "past_sla": lambda: replace(s, complaints_past_sla=s.complaints_past_sla + by),
        "reopened": lambda: replace(s, complaints_reopened=s.complaints_reopened + by),
        "nps": lambda: replace(s, latest_nps=max(0, (10 if s.latest_nps is None else s.latest_nps) - by)),
        "csat": lambda: replace(s, latest_csat=max(1, (5 if s.latest_csat is None else s.latest_csat) - by)),
        "overdue": lambda: replace(
            s, overdue={**s.overdue, OverdueBucket.DAYS_90_PLUS: s.overdue.get(OverdueBucket.DAYS_90_PLUS, D(0)) + by}
        ),
        "holds": lambda: replace(s, credit_holds=s.credit_holds + by),
    }
    return changes[which]()


@given(signals)
def test_the_score_is_always_within_0_and_100(s: Signals) -> None:
    assessment = score(s, POLICY)

    assert 0 <= assessment.score <= 100
    assert assessment.band is band(assessment.score, POLICY.bands)


@given(
    signals,
    st.sampled_from(
        ["days", "spend_last", "spend_previous", "past_sla", "reopened", "nps", "csat", "overdue", "holds"]
    ),
    st.integers(min_value=0, max_value=500),
)
def test_a_worse_signal_never_lowers_the_score(s: Signals, which: str, by: int) -> None:
    assert score(_worse(s, which, by), POLICY).score >= score(s, POLICY).score


@given(st.lists(st.integers(min_value=0, max_value=100), max_size=40))
def test_there_is_never_more_than_one_live_alert_and_a_live_alert_never_sits_below_the_clear_threshold(
    scores: list[int],
) -> None:
    alert: Alert | None = None
    for hour, value in enumerate(scores):
        was_live = alert is not None and alert.is_live
        alert, transition = next_alert(alert, risk(value), at(hour), POLICY)
        if transition is AlertTransition.RAISED:
            assert not was_live
        if alert is not None and alert.is_live:
            assert alert.last_score >= POLICY.alert_clear_below
            assert alert.occurrences >= 1


def test_amounts_in_evidence_read_the_same_whatever_scale_the_sum_came_with() -> None:
    # folded from events a sum reads "318.00", loaded from NUMERIC(…, 4) "318.0000": a rebuild of the demo
    # compared the same evidence as different
    folded, loaded = (
        score(Signals(spend_last_90=D(0), spend_previous_90=D(value)), POLICY) for value in ("318.00", "318.0000")
    )
    assert folded.reasons == loaded.reasons
    assert folded.reasons[0].evidence["spend_previous_90"] == "318.0000"
