"""Composition root of the segmentation service: policy, clock and engine parts, wired once.

Tests put a fixed clock in ``container.parts["clock"]`` (and optionally a policy in
``container.parts["policy"]``) before calling :func:`wire`, or call it with keyword arguments.
"""

from __future__ import annotations

import gc
from datetime import datetime, timedelta

from segmentation.application.assessment import Assessor
from segmentation.application.projector import SegmentProjector
from segmentation.config import SegmentationSettings
from segmentation.domain.policy import Policy, load_policy
from shared.clock import Clock, running_from
from shared.events.envelope import utc_now
from shared.runtime import Container


class FixedClock:
    """A clock that says what it is told: deterministic tests and rebuilds."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


def wire(container: Container[SegmentationSettings]) -> None:
    settings = container.settings
    policy: Policy = container.parts.get("policy") or load_policy(settings.policy_file)
    clock: Clock = container.parts.get("clock") or (
        running_from(settings.clock_start, settings.clock_anchor) if settings.clock_start is not None else utc_now
    )
    container.parts["policy"] = policy
    container.parts["clock"] = clock
    container.parts["assessor"] = Assessor(policy, container.topics.segmentation)


def build_projection(container: Container[SegmentationSettings]) -> SegmentProjector:
    # The projector allocates many small objects per poll and keeps the facts of recent customers in
    # memory: with CPython's default thresholds the collector keeps re-walking that long-lived cache.
    # Fewer young collections measured ~20 % more events/s (docs/segmentation.md, "Throughput").
    gc.set_threshold(50_000, 50, 100)
    return SegmentProjector(
        topic=container.topics.segmentation,
        policy=container.parts["policy"],
        clock=container.parts["clock"],
        cache_size=container.settings.facts_cache_size,
    )
