"""Settings built in code take every field by its name as well as by its environment alias — a field name
is never dropped in silence (the populate_by_name trap) — and a keyword that names no field is refused.
The environment is still read under the alias only (never ``<PREFIX>_<field name>``)."""

from __future__ import annotations

from typing import Any

import pytest

from customers.config import CustomersSettings
from feedback.config import FeedbackSettings
from orders.config import OrdersSettings
from segmentation.config import SegmentationSettings
from shared.settings import ApiSettings, ServiceSettings, field_alias

pytestmark = pytest.mark.unit

SERVICE_SETTINGS: list[type[ServiceSettings]] = [
    CustomersSettings,
    FeedbackSettings,
    OrdersSettings,
    SegmentationSettings,
]

#: One non-default value per field that has an environment alias (field name → value).
NON_DEFAULTS: dict[str, Any] = {
    "environment": "test",
    "api_tokens": {"tok-test-0001": ["*"]},
    "fault_inject": "relay.before_publish",
    "idempotency_retention_hours": 2.0,
    "kafka_bootstrap_servers": "kafka.example:9093",
    "topic_namespace": "ns1.",
    "topic_partitions": 6,
    "topic_replication_factor": 3,
    "log_level": "DEBUG",
    "log_format": "console",
}


def aliased_fields(cls: type[ApiSettings]) -> dict[str, str]:
    """field name → its environment variable, for every field that has one."""
    return {name: alias for name, field in cls.model_fields.items() if (alias := field_alias(field)) is not None}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in {v for cls in SERVICE_SETTINGS for v in aliased_fields(cls).values()}:
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize("cls", SERVICE_SETTINGS, ids=lambda c: c.__name__)
def test_every_aliased_setting_can_be_given_by_its_field_name_or_by_its_alias(cls: type[ServiceSettings]) -> None:
    aliases = aliased_fields(cls)
    assert set(aliases) == set(NON_DEFAULTS), "give a new aliased field a value in NON_DEFAULTS"

    by_name = cls(**NON_DEFAULTS)
    by_alias = cls(**{aliases[name]: value for name, value in NON_DEFAULTS.items()})

    for name, value in NON_DEFAULTS.items():
        assert getattr(by_name, name) == value, name
        assert getattr(by_alias, name) == value, name


def test_a_keyword_argument_wins_over_the_environment_by_field_name_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "from-env:9092")
    monkeypatch.setenv("TIERSTREAM_TOPIC_NAMESPACE", "env.")

    settings = SegmentationSettings(kafka_bootstrap_servers="from-code:9092", topic_namespace="code.")

    assert (settings.kafka_bootstrap_servers, settings.topic_namespace) == ("from-code:9092", "code.")
    assert SegmentationSettings().kafka_bootstrap_servers == "from-env:9092"


def test_the_environment_is_read_under_the_alias_only_not_under_the_prefixed_field_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERS_KAFKA_BOOTSTRAP_SERVERS", "prefixed:9092")
    monkeypatch.setenv("ORDERS_API_TOKENS", '{"tok-prefixed-01": ["*"]}')

    settings = OrdersSettings()

    assert settings.kafka_bootstrap_servers == OrdersSettings.model_fields["kafka_bootstrap_servers"].default
    assert settings.api_tokens is None


def test_a_field_without_alias_is_still_given_by_its_name() -> None:
    assert OrdersSettings(overdue_hold_days=7, database_url="postgresql://h/db").overdue_hold_days == 7


def test_a_keyword_that_names_no_setting_is_refused_not_dropped() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['topic_namespce'\]"):
        SegmentationSettings(topic_namespce="ns1.")


def test_a_setting_given_both_by_field_name_and_by_alias_is_refused() -> None:
    with pytest.raises(TypeError, match=r"\['topic_namespace'\] given both by field name and by alias"):
        OrdersSettings(topic_namespace="a.", TIERSTREAM_TOPIC_NAMESPACE="b.")


def test_validation_still_applies_to_a_setting_given_by_field_name() -> None:
    with pytest.raises(ValueError, match="at least 8 characters"):
        ApiSettings(api_tokens={"short": ["*"]})
