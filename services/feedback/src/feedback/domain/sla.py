"""The complaint SLA policy (DESIGN §4): per severity, how soon a complaint must be acknowledged
(hours) and resolved (days).

The policy is configuration, not code: :class:`feedback.config.FeedbackSettings` holds one
:class:`SlaPolicy` that the environment may override (``FEEDBACK_SLA__HIGH__ACKNOWLEDGE_HOURS=2`` or
``FEEDBACK_SLA='{"high": {"acknowledge_hours": 2, "resolve_days": 2}}'``). It is validated at start:
every window is positive, acknowledging never takes longer than resolving (the contract demands
``acknowledge_by ≤ resolve_by``), and a more severe complaint never gets a longer window than a
milder one (a swapped pair of numbers is refused instead of silently inverting priorities).

Deadlines are computed once, when a complaint is filed or reopened, and recorded in the event, so a
later policy change never moves a deadline that was already promised, and a replay sees the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events.vocabulary import Severity


@dataclass(frozen=True)
class Sla:
    """The two windows of one severity."""

    acknowledge_within: timedelta
    resolve_within: timedelta


class SeverityTargets(BaseModel):
    """SLA targets of one severity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    acknowledge_hours: float = Field(gt=0, le=24 * 365, description="hours from filing to acknowledgement")
    resolve_days: float = Field(gt=0, le=365, description="days from filing (or reopening) to resolution")

    @model_validator(mode="after")
    def _acknowledge_before_resolve(self) -> Self:
        if self.acknowledge_hours > self.resolve_days * 24:
            raise ValueError("acknowledge_hours must not exceed resolve_days × 24")
        return self

    def sla(self) -> Sla:
        return Sla(timedelta(hours=self.acknowledge_hours), timedelta(days=self.resolve_days))


#: The default targets (DESIGN §4: acknowledge within hours, resolve within days).
DEFAULT_TARGETS: dict[str, dict[str, float]] = {
    "critical": {"acknowledge_hours": 2, "resolve_days": 1},
    "high": {"acknowledge_hours": 4, "resolve_days": 3},
    "medium": {"acknowledge_hours": 24, "resolve_days": 7},
    "low": {"acknowledge_hours": 48, "resolve_days": 14},
}


class SlaPolicy(BaseModel):
    """SLA targets for every severity; anything not given keeps its default (:data:`DEFAULT_TARGETS`),
    so ``{"high": {"acknowledge_hours": 2}}`` changes just that one number."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    critical: SeverityTargets = SeverityTargets.model_validate(DEFAULT_TARGETS["critical"])
    high: SeverityTargets = SeverityTargets.model_validate(DEFAULT_TARGETS["high"])
    medium: SeverityTargets = SeverityTargets.model_validate(DEFAULT_TARGETS["medium"])
    low: SeverityTargets = SeverityTargets.model_validate(DEFAULT_TARGETS["low"])

    @model_validator(mode="before")
    @classmethod
    def _partial_overrides_keep_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for severity, defaults in DEFAULT_TARGETS.items():
            given = data.get(severity)
            if isinstance(given, dict):
                merged[severity] = {**defaults, **given}
        return merged

    @model_validator(mode="after")
    def _severer_is_never_slower(self) -> Self:
        # most severe first: each window must be ≤ the next (milder) one's
        ordered = [
            (s, getattr(self, s.value)) for s in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
        ]
        for (severe, a), (mild, b) in pairwise(ordered):
            if a.acknowledge_hours > b.acknowledge_hours:
                raise ValueError(f"{severe}.acknowledge_hours must be ≤ {mild}.acknowledge_hours")
            if a.resolve_days > b.resolve_days:
                raise ValueError(f"{severe}.resolve_days must be ≤ {mild}.resolve_days")
        return self

    def for_severity(self, severity: str) -> Sla:
        return getattr(self, Severity(severity).value).sla()


DEFAULT_SLA_POLICY = SlaPolicy()

#: The default windows per severity (a view of :data:`DEFAULT_SLA_POLICY`).
DEFAULT_SLA: dict[str, Sla] = {s.value: DEFAULT_SLA_POLICY.for_severity(s) for s in Severity}
