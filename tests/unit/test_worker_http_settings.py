"""The worker roles' HTTP listener: its settings, when a process opens it, and what it answers.

The listener itself (a real ``python -m orders consume`` / ``customers relay`` on Kafka + PostgreSQL) is
exercised in tests/integration/test_worker_http.py; here, the settings and the app in memory.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import Counter
from pydantic import ValidationError

from customers.config import CustomersSettings
from orders.config import OrdersSettings
from shared.serving import CONSUMER_READY, RELAY_READY, WorkerHealth, serves_worker_http, worker_app

pytestmark = pytest.mark.unit

#: a metric defined only here: /metrics serves the process's default registry, whatever module defines it
PROBE = Counter("tierstream_worker_http_unit_probe_total", "Counted by the worker listener unit test")


# --- settings ----------------------------------------------------------------------------------------
def test_the_listener_is_off_and_on_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERS_METRICS_PORT", raising=False)
    monkeypatch.delenv("ORDERS_METRICS_HOST", raising=False)
    settings = OrdersSettings()
    assert settings.metrics_port == 0
    assert settings.metrics_host == "127.0.0.1"


def test_host_and_port_are_read_from_the_service_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_METRICS_PORT", "9100")
    monkeypatch.setenv("ORDERS_METRICS_HOST", "0.0.0.0")
    monkeypatch.setenv("METRICS_PORT", "9999")  # unprefixed: not this setting
    settings = OrdersSettings()
    assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 9100)
    assert CustomersSettings().metrics_port == 0, "another service's prefix is not read"


@pytest.mark.parametrize("value", ["-1", "65536", "soon"])
def test_a_port_out_of_range_is_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ORDERS_METRICS_PORT", value)
    with pytest.raises(ValidationError, match="metrics_port"):
        OrdersSettings()


def test_settings_name_their_environment_variables() -> None:
    assert OrdersSettings.env_name("metrics_port") == "ORDERS_METRICS_PORT"
    assert CustomersSettings.env_name("http_port") == "CUSTOMERS_HTTP_PORT"
    assert OrdersSettings.env_name("kafka_bootstrap_servers") == "KAFKA_BOOTSTRAP_SERVERS"
    assert OrdersSettings.env_name("topic_namespace") == "TIERSTREAM_TOPIC_NAMESPACE"


@pytest.mark.parametrize(
    ("roles", "port", "serves"),
    [
        ({"consume"}, 9100, True),
        ({"relay"}, 9100, True),
        ({"sweep"}, 9100, True),
        ({"consume"}, 0, False),  # 0 = no listener
        ({"api"}, 9100, False),  # the API serves /metrics and /health/* itself
        ({"api", "relay", "consume", "sweep"}, 9100, False),  # dev: no second listener
    ],
)
def test_only_a_process_of_worker_roles_with_a_port_opens_the_listener(
    roles: set[str], port: int, serves: bool
) -> None:
    assert serves_worker_http(OrdersSettings(metrics_port=port), roles) is serves


# --- the app -----------------------------------------------------------------------------------------
def client(health: WorkerHealth) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=worker_app("orders", health)), base_url="http://w")


async def test_live_while_every_role_runs_and_503_once_one_has_ended() -> None:
    health = WorkerHealth()
    health.running = {"relay": True, "consume": True}
    async with client(health) as http:
        live = await http.get("/health/live")
        assert (live.status_code, live.json()) == (200, {"status": "ok", "service": "orders"})
        health.running["consume"] = False
        live = await http.get("/health/live")
        assert (live.status_code, live.json()["status"]) == (503, "stopped")
        ready = await http.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["roles"] is False


async def test_a_process_with_no_role_running_is_not_live() -> None:
    async with client(WorkerHealth()) as http:
        assert (await http.get("/health/live")).status_code == 503


async def test_ready_only_once_each_expected_condition_is_reported_and_holds() -> None:
    health = WorkerHealth()
    health.running = {"relay": True, "consume": True}
    health.expect(RELAY_READY)
    health.expect(CONSUMER_READY)
    joined = False  # what the consume role reports (ProjectionConsumer.joined)
    async with client(health) as http:
        ready = await http.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"roles": True, RELAY_READY: False, CONSUMER_READY: False}
        health.report(RELAY_READY, lambda: True)
        health.report(CONSUMER_READY, lambda: joined)
        assert (await http.get("/health/ready")).json()["checks"][CONSUMER_READY] is False
        joined = True
        ready = await http.get("/health/ready")
        assert (ready.status_code, ready.json()["status"]) == (200, "ok")


async def test_metrics_are_the_default_registry_in_prometheus_text() -> None:
    PROBE.inc(3)
    async with client(WorkerHealth()) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "tierstream_worker_http_unit_probe_total 3.0" in response.text
    assert "# TYPE tierstream_consumer_lag gauge" in response.text  # defined by the consumer module


async def test_the_listener_serves_nothing_else() -> None:
    async with client(WorkerHealth()) as http:
        for path in ("/docs", "/openapi.json", "/customers"):
            assert (await http.get(path)).status_code == 404, path
