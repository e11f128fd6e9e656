"""A consumer's per-group series exist, at 0, from its construction: an alert can tell "nothing
dead-lettered" from "not scraped"."""

from __future__ import annotations

import json
import subprocess
import sys

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


#: Series that a service module sets up, at 0, when it is loaded.
SERVICE_SERIES = [
    ("tierstream_orders_credit_holds_total", {"reason": "over_credit_limit"}),
    ("tierstream_orders_credit_holds_total", {"reason": "receivables_overdue_60"}),
    ("tierstream_orders_overdue_reported_total", {"bucket": "90+"}),
    ("tierstream_churn_alerts_raised_total", {"path": "sweep"}),
]
SERVICE_MODULES = ["orders.application.handlers", "orders.application.overdue", "segmentation.application.metrics"]
#: Run in a fresh interpreter: in this one, another test may already have created the series.
_READ_SAMPLES = """
import importlib, json, sys
from prometheus_client import REGISTRY
wanted, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
before = [REGISTRY.get_sample_value(name, labels) for name, labels in wanted]
for module in modules:
    importlib.import_module(module)
print(json.dumps({"before": before, "after": [REGISTRY.get_sample_value(n, labels) for n, labels in wanted]}))
"""


@pytest.fixture(scope="module")
def fresh_process_samples() -> dict[str, list[float | None]]:
    """The series' values in a new interpreter, before and after the service modules are imported."""
    done = subprocess.run(
        [sys.executable, "-c", _READ_SAMPLES, json.dumps(SERVICE_SERIES), json.dumps(SERVICE_MODULES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    samples: dict[str, list[float | None]] = json.loads(done.stdout)
    return samples


@pytest.mark.parametrize("index", range(len(SERVICE_SERIES)), ids=[f"{m}{lb}" for m, lb in SERVICE_SERIES])
def test_the_services_labelled_counters_exist_at_0_once_their_module_is_loaded(
    index: int, fresh_process_samples: dict[str, list[float | None]]
) -> None:
    assert fresh_process_samples["before"][index] is None  # not there before the import ...
    assert fresh_process_samples["after"][index] == 0  # ... at 0 after it
