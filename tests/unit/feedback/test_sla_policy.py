"""The complaint SLA policy: defaults, environment overrides, and what a bad policy is refused for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from feedback.config import FeedbackSettings
from feedback.domain.sla import DEFAULT_SLA_POLICY, SlaPolicy

pytestmark = pytest.mark.unit


def test_the_settings_carry_the_default_policy_when_nothing_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEEDBACK_SLA", raising=False)
    assert FeedbackSettings().sla == DEFAULT_SLA_POLICY


def test_one_number_can_be_overridden_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACK_SLA__CRITICAL__ACKNOWLEDGE_HOURS", "1")
    sla = FeedbackSettings().sla
    assert sla.for_severity("critical").acknowledge_within == timedelta(hours=1)
    assert sla.for_severity("critical").resolve_within == timedelta(days=1)  # the rest keeps its default
    assert sla.high == DEFAULT_SLA_POLICY.high


def test_the_policy_can_be_given_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACK_SLA", '{"low": {"acknowledge_hours": 72, "resolve_days": 30}}')
    assert FeedbackSettings().sla.for_severity("low").resolve_within == timedelta(days=30)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"high": {"acknowledge_hours": 0}}, "greater than 0"),
        ({"high": {"resolve_days": -1}}, "greater than 0"),
        ({"low": {"acknowledge_hours": 400}}, "acknowledge_hours must not exceed resolve_days"),
        ({"critical": {"acknowledge_hours": 5}}, "critical.acknowledge_hours must be ≤ high.acknowledge_hours"),
        ({"medium": {"resolve_days": 20}}, "medium.resolve_days must be ≤ low.resolve_days"),
        ({"urgent": {"acknowledge_hours": 1}}, "urgent"),
    ],
    ids=["zero", "negative", "ack-after-resolve", "severer-slower-ack", "severer-slower-resolve", "unknown-severity"],
)
def test_an_invalid_policy_is_refused_naming_the_problem(policy: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SlaPolicy.model_validate(policy)


def test_an_invalid_policy_in_the_environment_stops_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACK_SLA__HIGH__ACKNOWLEDGE_HOURS", "100")
    with pytest.raises(ValidationError, match=r"sla\.high"):
        FeedbackSettings()


def test_sweep_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACK_SWEEP_INTERVAL_S", "0")
    with pytest.raises(ValidationError, match="sweep_interval_s"):
        FeedbackSettings()
