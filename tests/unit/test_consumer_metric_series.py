"""A consumer's per-group series exist, at 0, from its construction: an alert can tell "nothing
dead-lettered" from "not scraped"."""

from __future__ import annotations

import importlib

import pytest
from prometheus_client import REGISTRY

from shared.messaging.consumer import ProjectionConsumer

pytestmark = pytest.mark.unit

GROUP = "metric-series-test"


class NoProjection:
    async def apply(self, conn: object, events: object) -> list[object]:
        return []


@pytest.mark.parametrize(
    "sample",
    [
        "tierstream_events_applied_total",
        "tierstream_events_duplicate_total",
        "tierstream_events_deadlettered_total",
        "tierstream_projection_latency_seconds_count",
    ],
)
async def test_a_new_consumer_exposes_its_groups_series_at_zero(sample: str) -> None:
    assert REGISTRY.get_sample_value(sample, {"group": f"{GROUP}-{sample}"}) is None

    consumer = ProjectionConsumer(
        object(),  # type: ignore[arg-type]  # neither engine nor broker is touched before run()
        NoProjection(),  # type: ignore[arg-type]
        bootstrap_servers="127.0.0.1:1",
        group_id=f"{GROUP}-{sample}",
        topics=["t"],
        deadletter_topic="dl",
    )

    await consumer.consumer.stop()

    assert REGISTRY.get_sample_value(sample, {"group": f"{GROUP}-{sample}"}) == 0


@pytest.mark.parametrize(
    ("metric", "labels"),
    [
        ("tierstream_orders_credit_holds_total", {"reason": "over_credit_limit"}),
        ("tierstream_orders_credit_holds_total", {"reason": "receivables_overdue_60"}),
        ("tierstream_orders_overdue_reported_total", {"bucket": "90+"}),
        ("tierstream_churn_alerts_raised_total", {"path": "sweep"}),
    ],
)
def test_the_services_labelled_counters_exist_at_0_once_their_module_is_loaded(
    metric: str, labels: dict[str, str]
) -> None:
    for module in ("orders.application.handlers", "orders.application.overdue", "segmentation.application.metrics"):
        importlib.import_module(module)  # the series are set up when the module is loaded

    assert REGISTRY.get_sample_value(metric, labels) is not None
