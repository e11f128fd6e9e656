"""Segmentation's own Prometheus metrics (the shared consumer's are in ``shared.messaging.consumer``)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter

from shared.events.segmentation import ChurnRiskRaised
from shared.messaging.outbox import OutboxMessage

CHURN_ALERTS_RAISED = Counter(
    "tierstream_churn_alerts_raised_total",
    "Churn-risk alerts raised (ChurnRiskRaised staged), counted once the raising transaction committed",
    ["path"],  # "consumer" (live events), "sweep" (time-based re-assessment) or "recalibration"
)
for _path in ("consumer", "sweep", "recalibration"):  # every series exists from start-up, at 0
    CHURN_ALERTS_RAISED.labels(_path)
_RAISED = ChurnRiskRaised.__name__


def count_raised_alerts(messages: Iterable[OutboxMessage], *, path: str) -> int:
    """Count the ChurnRiskRaised messages of a transaction that has committed (call after the commit)."""
    raised = sum(1 for m in messages if dict(m.headers).get("event_type") == _RAISED)
    if raised:
        CHURN_ALERTS_RAISED.labels(path).inc(raised)
    return raised
