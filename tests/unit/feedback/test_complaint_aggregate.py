"""Complaint aggregate: the closed loop, its SLA deadlines and escalation — given events, when a
command, then events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from feedback.application.public_events import to_public
from feedback.domain.complaint import Complaint, ComplaintStatus, Step, StepOutOfTurn, StepTaken
from feedback.domain.events import ComplaintReopened
from feedback.domain.instants import CLOCK_SKEW, BeforePreviousStep, FieldRuleViolation, InTheFuture, dated
from feedback.domain.sla import DEFAULT_SLA, DEFAULT_SLA_POLICY, SlaPolicy
from shared.events import feedback as contract
from shared.events.vocabulary import SlaBreach
from shared.eventsourcing.aggregate import DomainError

pytestmark = pytest.mark.unit

FILED_AT = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
HIGH = DEFAULT_SLA["high"]  # 4 h to acknowledge, 3 days to resolve
ACK_BY = FILED_AT + HIGH.acknowledge_within
RESOLVE_BY = FILED_AT + HIGH.resolve_within


# -- given / when / then ------------------------------------------------------------------------------
def filed(severity: str = "high", at: datetime = FILED_AT, policy: SlaPolicy = DEFAULT_SLA_POLICY) -> BaseModel:
    sla = policy.for_severity(severity)
    return contract.ComplaintFiled(
        complaint_id="k-1",
        customer_id="c-1",
        category="delivery",
        severity=severity,
        summary="late",
        filed_at=at,
        acknowledge_by=at + sla.acknowledge_within,
        resolve_by=at + sla.resolve_within,
    )


ACKNOWLEDGED = contract.ComplaintAcknowledged(complaint_id="k-1", acknowledged_by="agent-7")
RESOLVED = contract.ComplaintResolved(complaint_id="k-1", resolution="replacement shipped")


def reopened(at: datetime) -> ComplaintReopened:
    return ComplaintReopened(
        complaint_id="k-1", reason="still broken", reopened_at=at, resolve_by=at + HIGH.resolve_within
    )


def acknowledged(at: datetime) -> contract.ComplaintAcknowledged:
    return contract.ComplaintAcknowledged(complaint_id="k-1", acknowledged_by="agent-7", acknowledged_at=at)


def resolved(at: datetime) -> contract.ComplaintResolved:
    return contract.ComplaintResolved(complaint_id="k-1", resolution="replacement shipped", resolved_at=at)


def escalated(breach: SlaBreach, deadline: datetime, hours: int = 0) -> contract.ComplaintEscalated:
    return contract.ComplaintEscalated(complaint_id="k-1", breach=breach, deadline=deadline, overdue_by_hours=hours)


def given(*events: BaseModel) -> Complaint:
    return Complaint.replay("k-1", events)


def then(complaint: Complaint) -> list[BaseModel]:
    return complaint.pending_events


# -- filing and deadlines -------------------------------------------------------------------------------
@pytest.mark.parametrize("severity", sorted(DEFAULT_SLA))
def test_filing_sets_deadlines_from_the_severity_policy(severity: str) -> None:
    complaint = Complaint.file(
        "k-1",
        "c-1",
        category="delivery",
        severity=severity,
        summary="late",
        order_id=None,
        filed_at=FILED_AT,
        policy=DEFAULT_SLA_POLICY,
    )
    assert then(complaint) == [filed(severity)]
    assert complaint.status == ComplaintStatus.OPEN
    assert complaint.next_escalation_at == FILED_AT + DEFAULT_SLA[severity].acknowledge_within


def test_filing_follows_the_configured_policy_not_the_defaults() -> None:
    faster = {"acknowledge_hours": 1, "resolve_days": 0.5}
    policy = SlaPolicy.model_validate({"critical": faster, "high": faster})
    complaint = Complaint.file(
        "k-1", "c-1", category="price", severity="high", summary="x", order_id="o-9", filed_at=FILED_AT, policy=policy
    )
    [event] = then(complaint)
    assert isinstance(event, contract.ComplaintFiled)
    assert (event.acknowledge_by, event.resolve_by) == (FILED_AT + timedelta(hours=1), FILED_AT + timedelta(hours=12))
    assert event.order_id == "o-9"


def test_default_policy_matches_the_design_brief() -> None:
    assert {s: (v.acknowledge_within, v.resolve_within) for s, v in DEFAULT_SLA.items()} == {
        "critical": (timedelta(hours=2), timedelta(days=1)),
        "high": (timedelta(hours=4), timedelta(days=3)),
        "medium": (timedelta(hours=24), timedelta(days=7)),
        "low": (timedelta(hours=48), timedelta(days=14)),
    }


# -- the closed loop ------------------------------------------------------------------------------------
def test_acknowledging_an_open_complaint_records_who_took_it() -> None:
    complaint = given(filed())
    complaint.acknowledge("agent-7")
    assert then(complaint) == [ACKNOWLEDGED]
    assert complaint.acknowledged_by == "agent-7"


def test_resolving_records_the_resolution_but_does_not_close_the_loop() -> None:
    complaint = given(filed(), ACKNOWLEDGED)
    complaint.resolve("replacement shipped")
    assert then(complaint) == [RESOLVED]
    assert complaint.status == ComplaintStatus.RESOLVED


def test_the_customers_confirmation_closes_the_loop() -> None:
    complaint = given(filed(), ACKNOWLEDGED, RESOLVED)
    complaint.confirm()
    assert then(complaint) == [contract.ComplaintConfirmed(complaint_id="k-1")]
    assert complaint.status == ComplaintStatus.CLOSED


def test_a_complaint_can_be_resolved_without_a_separate_acknowledgement() -> None:
    complaint = given(filed())
    complaint.resolve("refund issued")
    assert then(complaint) == [contract.ComplaintResolved(complaint_id="k-1", resolution="refund issued")]


def test_rejecting_the_resolution_reopens_with_a_fresh_resolve_deadline_from_the_reopening() -> None:
    at = FILED_AT + timedelta(days=2)
    complaint = given(filed(), ACKNOWLEDGED, RESOLVED)
    complaint.reopen("still broken", at=at, policy=DEFAULT_SLA_POLICY)
    assert then(complaint) == [reopened(at)]
    assert complaint.status == ComplaintStatus.REOPENED
    assert complaint.resolve_by == at + HIGH.resolve_within
    assert complaint.acknowledge_by == ACK_BY  # not reset: the complaint already has an owner
    assert complaint.reopen_count == 1


def test_the_fresh_deadline_uses_the_policy_in_force_at_the_reopening() -> None:
    at = FILED_AT + timedelta(days=2)
    stricter = SlaPolicy.model_validate({"high": {"resolve_days": 1}})
    complaint = given(filed(), RESOLVED)
    complaint.reopen("still broken", at=at, policy=stricter)
    assert complaint.resolve_by == at + timedelta(days=1)


def test_a_reopened_complaint_is_resolved_again_and_can_then_be_confirmed() -> None:
    complaint = given(filed(), RESOLVED, reopened(FILED_AT + timedelta(days=1)))
    complaint.resolve("second replacement")
    complaint.confirm()
    assert [type(e).__name__ for e in then(complaint)] == ["ComplaintResolved", "ComplaintConfirmed"]


def test_replay_restores_the_deadline_a_reopening_recorded() -> None:
    at = FILED_AT + timedelta(days=2)
    complaint = given(filed(), RESOLVED, reopened(at))
    assert complaint.resolve_by == at + HIGH.resolve_within
    assert complaint.next_escalation_at == at + HIGH.resolve_within


@pytest.mark.parametrize(
    ("history", "command"),
    [
        ((), lambda c: c.acknowledge(None)),
        ((filed(),), lambda c: c.confirm()),
        ((filed(),), lambda c: c.reopen("x", at=FILED_AT, policy=DEFAULT_SLA_POLICY)),
        ((filed(), ACKNOWLEDGED), lambda c: c.acknowledge(None)),
        ((filed(), RESOLVED), lambda c: c.acknowledge(None)),
        ((filed(), RESOLVED), lambda c: c.resolve("again")),
        ((filed(), RESOLVED, contract.ComplaintConfirmed(complaint_id="k-1")), lambda c: c.resolve("late")),
        (
            (filed(), RESOLVED, contract.ComplaintConfirmed(complaint_id="k-1")),
            lambda c: c.reopen("x", at=FILED_AT, policy=DEFAULT_SLA_POLICY),
        ),
    ],
    ids=[
        "acknowledge-unfiled",
        "confirm-unresolved",
        "reopen-unresolved",
        "acknowledge-twice",
        "acknowledge-resolved",
        "resolve-resolved",
        "resolve-closed",
        "reopen-closed",
    ],
)
def test_commands_out_of_turn_are_refused_and_record_nothing(
    history: tuple[BaseModel, ...], command: Callable[[Complaint], None]
) -> None:
    complaint = given(*history)
    with pytest.raises(DomainError, match="cannot"):
        command(complaint)
    assert then(complaint) == []


# -- escalation -----------------------------------------------------------------------------------------
def test_nothing_is_escalated_before_a_deadline_passes() -> None:
    complaint = given(filed())
    assert complaint.escalate_overdue(ACK_BY) == 0  # at the deadline is still in time
    assert then(complaint) == []


def test_a_missed_acknowledgement_is_escalated_with_the_deadline_and_whole_hours_overdue() -> None:
    complaint = given(filed())
    assert complaint.escalate_overdue(ACK_BY + timedelta(minutes=150)) == 1
    assert then(complaint) == [escalated(SlaBreach.ACKNOWLEDGE, ACK_BY, hours=2)]
    assert complaint.escalations == 1
    assert complaint.next_escalation_at == RESOLVE_BY
    assert complaint.status == ComplaintStatus.OPEN  # escalation changes who looks, not the loop


def test_a_breach_is_escalated_only_once() -> None:
    complaint = given(filed(), escalated(SlaBreach.ACKNOWLEDGE, ACK_BY))
    assert complaint.escalate_overdue(ACK_BY + timedelta(hours=3)) == 0
    assert then(complaint) == []


def test_an_acknowledged_complaint_is_not_escalated_for_acknowledgement() -> None:
    complaint = given(filed(), ACKNOWLEDGED)
    assert complaint.escalate_overdue(ACK_BY + timedelta(hours=1)) == 0
    assert complaint.next_escalation_at == RESOLVE_BY


def test_both_breaches_found_in_one_sweep_are_escalated_in_deadline_order() -> None:
    complaint = given(filed())
    now = RESOLVE_BY + timedelta(hours=1)
    assert complaint.escalate_overdue(now) == 2
    assert then(complaint) == [
        escalated(SlaBreach.ACKNOWLEDGE, ACK_BY, hours=(now - ACK_BY) // timedelta(hours=1)),
        escalated(SlaBreach.RESOLVE, RESOLVE_BY, hours=1),
    ]
    assert complaint.next_escalation_at is None


def test_an_unresolved_acknowledged_complaint_is_escalated_for_resolution() -> None:
    complaint = given(filed(), ACKNOWLEDGED, escalated(SlaBreach.ACKNOWLEDGE, ACK_BY))
    complaint.escalate_overdue(RESOLVE_BY + timedelta(minutes=1))
    assert then(complaint) == [escalated(SlaBreach.RESOLVE, RESOLVE_BY, hours=0)]


@pytest.mark.parametrize(
    "history",
    [(filed(), RESOLVED), (filed(), RESOLVED, contract.ComplaintConfirmed(complaint_id="k-1"))],
    ids=["resolved-awaiting-customer", "closed"],
)
def test_resolved_and_closed_complaints_are_never_escalated(history: tuple[BaseModel, ...]) -> None:
    complaint = given(*history)
    assert complaint.escalate_overdue(RESOLVE_BY + timedelta(days=30)) == 0
    assert complaint.next_escalation_at is None


def test_after_a_reopening_the_new_resolve_deadline_may_be_escalated_once_more() -> None:
    at = RESOLVE_BY + timedelta(days=1)
    new_deadline = at + HIGH.resolve_within
    complaint = given(
        filed(),
        ACKNOWLEDGED,
        escalated(SlaBreach.RESOLVE, RESOLVE_BY),
        RESOLVED,
        reopened(at),
    )
    assert complaint.next_escalation_at == new_deadline
    assert complaint.escalate_overdue(new_deadline) == 0
    assert complaint.escalate_overdue(new_deadline + timedelta(hours=5)) == 1
    assert complaint.escalate_overdue(new_deadline + timedelta(hours=6)) == 0
    assert then(complaint) == [escalated(SlaBreach.RESOLVE, new_deadline, hours=5)]
    assert complaint.escalations == 2


def test_a_reopening_does_not_revive_a_missed_acknowledgement() -> None:
    complaint = given(filed(), RESOLVED, reopened(ACK_BY + timedelta(hours=1)))
    complaint.escalate_overdue(ACK_BY + timedelta(hours=2))
    assert then(complaint) == []


# -- dated steps (history entered after the fact) -------------------------------------------------------
def test_each_step_records_when_it_happened_and_replay_restores_it() -> None:
    complaint = given(filed())
    complaint.acknowledge("agent-7", at=FILED_AT + timedelta(hours=1))
    complaint.resolve("replacement shipped", at=FILED_AT + timedelta(days=1))
    complaint.reopen("still broken", at=FILED_AT + timedelta(days=2), policy=DEFAULT_SLA_POLICY)
    complaint.resolve("replacement shipped", at=FILED_AT + timedelta(days=3))
    complaint.confirm(at=FILED_AT + timedelta(days=4))

    assert then(complaint) == [
        acknowledged(FILED_AT + timedelta(hours=1)),
        resolved(FILED_AT + timedelta(days=1)),
        reopened(FILED_AT + timedelta(days=2)),
        resolved(FILED_AT + timedelta(days=3)),
        contract.ComplaintConfirmed(complaint_id="k-1", confirmed_at=FILED_AT + timedelta(days=4)),
    ]
    replayed = given(filed(), *then(complaint))
    assert (replayed.acknowledged_at, replayed.resolved_at, replayed.reopened_at, replayed.confirmed_at) == (
        FILED_AT + timedelta(hours=1),
        FILED_AT + timedelta(days=3),
        FILED_AT + timedelta(days=2),
        FILED_AT + timedelta(days=4),
    )
    assert replayed.last_step == ("confirmation", FILED_AT + timedelta(days=4))


@pytest.mark.parametrize(
    ("history", "command", "previous"),
    [
        ((filed(),), lambda c: c.acknowledge(None, at=FILED_AT - timedelta(seconds=1)), "filing"),
        (
            (filed(), acknowledged(FILED_AT + timedelta(hours=2))),
            lambda c: c.resolve("x", at=FILED_AT + timedelta(hours=1)),
            "acknowledgement",
        ),
        (
            (filed(), resolved(FILED_AT + timedelta(days=1))),
            lambda c: c.confirm(at=FILED_AT + timedelta(hours=23)),
            "resolution",
        ),
        (
            (filed(), resolved(FILED_AT + timedelta(days=1))),
            lambda c: c.reopen("x", at=FILED_AT, policy=DEFAULT_SLA_POLICY),
            "resolution",
        ),
        (
            (filed(), resolved(FILED_AT + timedelta(hours=1)), reopened(FILED_AT + timedelta(days=1))),
            lambda c: c.resolve("again", at=FILED_AT + timedelta(hours=2)),
            "reopening",
        ),
    ],
    ids=["ack-before-filing", "resolve-before-ack", "confirm-before-resolution", "reopen-before-it", "after-reopen"],
)
def test_a_step_dated_before_the_previous_step_is_refused_naming_that_step(
    history: tuple[BaseModel, ...], command: Callable[[Complaint], None], previous: str
) -> None:
    complaint = given(*history)
    with pytest.raises(BeforePreviousStep, match=f"previous step \\({previous} at ") as refused:
        command(complaint)
    assert (refused.value.field, refused.value.code) == ("at", "before_previous_step")
    assert then(complaint) == []


def test_a_step_may_share_the_instant_of_the_previous_one() -> None:
    complaint = given(filed(), acknowledged(FILED_AT))
    complaint.resolve("replacement shipped", at=FILED_AT)
    assert then(complaint) == [resolved(FILED_AT)]


def test_steps_recorded_without_a_time_leave_the_order_to_the_steps_that_have_one() -> None:
    complaint = given(filed(), ACKNOWLEDGED)  # recorded before steps carried their time
    assert complaint.last_step == ("filing", FILED_AT)
    complaint.resolve("replacement shipped", at=FILED_AT + timedelta(minutes=1))
    assert then(complaint) == [resolved(FILED_AT + timedelta(minutes=1))]


def test_a_late_step_first_records_the_escalation_the_sweep_had_not_recorded() -> None:
    complaint = given(filed())
    complaint.acknowledge("agent-7", at=ACK_BY + timedelta(hours=3, minutes=10))
    assert then(complaint) == [
        escalated(SlaBreach.ACKNOWLEDGE, ACK_BY, hours=3),
        acknowledged(ACK_BY + timedelta(hours=3, minutes=10)),
    ]
    assert (complaint.escalations, complaint.next_escalation_at) == (1, RESOLVE_BY)


def test_a_resolution_past_both_deadlines_records_both_breaches_before_it() -> None:
    complaint = given(filed())
    at = RESOLVE_BY + timedelta(hours=1)
    complaint.resolve("replacement shipped", at=at)
    assert then(complaint) == [
        escalated(SlaBreach.ACKNOWLEDGE, ACK_BY, hours=(at - ACK_BY) // timedelta(hours=1)),
        escalated(SlaBreach.RESOLVE, RESOLVE_BY, hours=1),
        resolved(at),
    ]


def test_a_late_step_does_not_repeat_an_escalation_already_recorded() -> None:
    complaint = given(filed(), escalated(SlaBreach.ACKNOWLEDGE, ACK_BY, hours=1))
    complaint.acknowledge("agent-7", at=ACK_BY + timedelta(hours=5))
    assert then(complaint) == [acknowledged(ACK_BY + timedelta(hours=5))]


def test_a_step_in_time_records_no_escalation() -> None:
    complaint = given(filed())
    complaint.acknowledge("agent-7", at=ACK_BY)  # at the deadline is still in time
    assert then(complaint) == [acknowledged(ACK_BY)]


def test_a_step_time_defaults_to_now_but_never_to_before_the_previous_step() -> None:
    now = FILED_AT + timedelta(hours=1)
    assert given(filed()).step_time(None, now) == now
    # a caller whose clock runs a minute ahead filed it "after" our now (within the tolerated skew)
    ahead = given(filed(at=now + timedelta(minutes=1)))
    assert ahead.step_time(None, now) == now + timedelta(minutes=1)


def test_a_given_step_time_may_be_past_or_within_the_clock_skew_but_not_later() -> None:
    now = FILED_AT + timedelta(days=1)
    complaint = given(filed())
    assert complaint.step_time(FILED_AT, now) == FILED_AT
    assert complaint.step_time(now + CLOCK_SKEW, now) == now + CLOCK_SKEW
    with pytest.raises(InTheFuture, match="is in the future") as refused:
        complaint.step_time(now + CLOCK_SKEW + timedelta(seconds=1), now)
    assert (refused.value.field, refused.value.code) == ("at", "in_the_future")


def test_a_filing_or_answer_time_is_the_given_past_instant_or_now() -> None:
    now = FILED_AT
    assert dated(None, now, field="filed_at") == now
    assert dated(now - timedelta(days=3650), now, field="filed_at") == now - timedelta(days=3650)
    with pytest.raises(InTheFuture) as refused:
        dated(now + timedelta(hours=1), now, field="answered_at")
    assert refused.value.field == "answered_at"


# -- a history entered with the filing (an import) -----------------------------------------------------
NOW = FILED_AT + timedelta(days=30)


def test_a_history_is_taken_step_by_step_under_the_commands_rules() -> None:
    complaint = given(filed())
    complaint.take_history(
        [
            StepTaken(Step.ACKNOWLEDGEMENT, ACK_BY + timedelta(hours=1), "agent-7"),
            StepTaken(Step.RESOLUTION, FILED_AT + timedelta(days=1), "replacement shipped"),
            StepTaken(Step.REOPENING, FILED_AT + timedelta(days=2), "still broken"),
            StepTaken(Step.RESOLUTION, FILED_AT + timedelta(days=3), "replacement shipped"),
            StepTaken(Step.CONFIRMATION, FILED_AT + timedelta(days=4)),
        ],
        now=NOW,
        policy=DEFAULT_SLA_POLICY,
    )
    assert then(complaint) == [
        escalated(SlaBreach.ACKNOWLEDGE, ACK_BY, hours=1),  # acknowledged an hour late
        acknowledged(ACK_BY + timedelta(hours=1)),
        resolved(FILED_AT + timedelta(days=1)),
        reopened(FILED_AT + timedelta(days=2)),
        resolved(FILED_AT + timedelta(days=3)),
        contract.ComplaintConfirmed(complaint_id="k-1", confirmed_at=FILED_AT + timedelta(days=4)),
    ]
    assert complaint.status == ComplaintStatus.CLOSED


@pytest.mark.parametrize(
    ("steps", "loc", "code"),
    [
        ([StepTaken(Step.CONFIRMATION, FILED_AT)], ("steps", 0, "step"), "step_out_of_turn"),
        (
            [StepTaken(Step.RESOLUTION, FILED_AT, "x"), StepTaken(Step.ACKNOWLEDGEMENT, FILED_AT, "a")],
            ("steps", 1, "step"),
            "step_out_of_turn",
        ),
        (
            [StepTaken(Step.ACKNOWLEDGEMENT, ACK_BY), StepTaken(Step.RESOLUTION, FILED_AT, "x")],
            ("steps", 1, "at"),
            "before_previous_step",
        ),
        ([StepTaken(Step.ACKNOWLEDGEMENT, NOW + timedelta(hours=1))], ("steps", 0, "at"), "in_the_future"),
        ([StepTaken(Step.RESOLUTION, FILED_AT)], ("steps", 0, "resolution"), "missing"),
    ],
    ids=["confirm-open", "ack-resolved", "before-previous", "future", "no-resolution"],
)
def test_a_refused_step_of_a_history_is_named_by_its_place(
    steps: list[StepTaken], loc: tuple[str | int, ...], code: str
) -> None:
    complaint = given(filed())
    with pytest.raises(FieldRuleViolation) as refused:
        complaint.take_history(steps, now=NOW, policy=DEFAULT_SLA_POLICY)
    assert (refused.value.loc, refused.value.code) == (loc, code)
    assert isinstance(refused.value, StepOutOfTurn) == (code == "step_out_of_turn")


# -- what is published ------------------------------------------------------------------------------------
def test_the_public_reopened_event_keeps_its_contract_shape() -> None:
    complaint = given(filed())
    public = to_public(complaint, reopened(FILED_AT))
    assert type(public) is contract.ComplaintReopened
    assert public is not None
    assert public.model_dump() == {"complaint_id": "k-1", "reason": "still broken", "reopened_at": FILED_AT}


def test_every_other_complaint_event_is_published_as_stored() -> None:
    complaint = given(filed())
    for event in (filed(), ACKNOWLEDGED, RESOLVED, escalated(SlaBreach.ACKNOWLEDGE, ACK_BY)):
        assert to_public(complaint, event) is event
