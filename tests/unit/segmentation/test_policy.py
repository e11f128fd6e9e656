"""The segmentation policy: defaults, the documented default file, and refusals that name the field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from segmentation.domain.policy import Policy, PolicyError, TierMode, load_policy, parse_policy

pytestmark = pytest.mark.unit

DEFAULT_FILE = Path(__file__).resolve().parents[3] / "services" / "segmentation" / "policy.default.yaml"


def test_the_documented_default_file_equals_the_built_in_defaults() -> None:
    assert load_policy(DEFAULT_FILE) == Policy()


def test_the_default_file_spells_out_every_field_of_the_policy() -> None:
    written = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))

    assert _field_paths(written) == _field_paths(Policy().model_dump(mode="json"))


def _field_paths(tree: Any, prefix: str = "policy") -> set[str]:
    if not isinstance(tree, dict):
        return {prefix}
    return {path for key, value in tree.items() for path in _field_paths(value, f"{prefix}.{key}")}


def test_no_file_means_the_defaults_of_design_section_4() -> None:
    policy = load_policy(None)

    assert policy.tier.mode is TierMode.PERCENTILE
    assert (policy.tier.percentile.vip, policy.tier.percentile.key, policy.tier.percentile.small) == (5, 25, 5)
    assert policy.tier.window_days == 365
    assert policy.activity.lost_days == 365
    assert policy.churn.alert_raise_at == policy.churn.bands.high == 60
    assert policy.churn.alert_clear_below == 40


def test_a_partial_file_keeps_the_defaults_of_what_it_leaves_out(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("tier:\n  mode: absolute\n  absolute:\n    vip: 80000.50\n", encoding="utf-8")

    policy = load_policy(path)

    assert policy.tier.mode is TierMode.ABSOLUTE
    assert policy.tier.absolute.vip == Decimal("80000.50")
    assert policy.tier.absolute.key == Decimal(10000)
    assert policy.rfm == Policy().rfm


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("# nothing changed\n", encoding="utf-8")

    assert load_policy(path) == Policy()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"tier": {"percentile": {"vip": 30}}}, "policy.tier.percentile.vip: must be < key"),
        ({"tier": {"percentile": {"vip": 0}}}, "policy.tier.percentile.vip: Input should be greater than 0"),
        ({"tier": {"percentile": {"key": 80, "small": 20}}}, "policy.tier.percentile.small: key + small must be < 100"),
        ({"tier": {"absolute": {"key": 60000}}}, "policy.tier.absolute.key: must be < vip"),
        ({"tier": {"absolute": {"normal": 10000}}}, "policy.tier.absolute.normal: must be < key"),
        ({"tier": {"mode": "median"}}, "policy.tier.mode: Input should be 'percentile' or 'absolute'"),
        ({"tier": {"window_days": 0}}, "policy.tier.window_days: Input should be greater than 0"),
        (
            {"tier": {"hysteresis": {"margin_pct": 100}}},
            "policy.tier.hysteresis.margin_pct: Input should be less than 100",
        ),
        (
            {"tier": {"hysteresis": {"consecutive_recalibrations": 0}}},
            "policy.tier.hysteresis.consecutive_recalibrations: Input should be greater than or equal to 1",
        ),
        ({"tier": {"hysterisis": {}}}, "policy.tier.hysterisis: Extra inputs are not permitted"),
        ({"activity": {"at_risk_gap_factor": 3}}, "policy.activity.at_risk_gap_factor: must be < dormant_gap_factor"),
        ({"activity": {"at_risk_min_days": 31}}, "policy.activity.at_risk_min_days: must be ≤ dormant_min_days"),
        (
            {"activity": {"few_orders_dormant_days": 400}},
            "policy.activity.few_orders_dormant_days: must be < lost_days",
        ),
        ({"activity": {"few_orders_at_risk_days": 90}}, "policy.activity.few_orders_at_risk_days: must be <"),
        ({"churn": {"alert_clear_below": 60}}, "policy.churn.alert_clear_below: must be < bands.high"),
        ({"churn": {"bands": {"medium": 60}}}, "policy.churn.bands.medium: must be < high"),
        ({"churn": {"points": {"spend_down": 101}}}, "policy.churn.points.spend_down: Input should be less than"),
        (
            {"churn": {"points": {"receivables_overdue": {"days_1_30": 30}}}},
            "policy.churn.points.receivables_overdue.days_31_60: must be ≥ days_1_30",
        ),
        ({"churn": {"detractor_nps_max": 11}}, "policy.churn.detractor_nps_max: Input should be less than or equal"),
        ({"rfm": {"grid_version": ""}}, "policy.rfm.grid_version: String should have at least 1 character"),
        ({"version": None}, "policy.version: Input should be a valid string"),
    ],
)
def test_a_bad_policy_is_refused_with_a_message_naming_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(raw)

    assert str(refused.value).startswith(message)


def test_every_broken_field_is_reported_not_only_the_first() -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy({"tier": {"window_days": -1}, "churn": {"spend_window_days": 0}})

    assert "policy.tier.window_days:" in str(refused.value)
    assert "policy.churn.spend_window_days:" in str(refused.value)


def test_a_file_whose_top_level_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("- tier\n- rfm\n", encoding="utf-8")

    with pytest.raises(PolicyError, match=r"^policy: must be a mapping"):
        load_policy(path)


def test_a_file_that_is_not_yaml_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("tier: [unclosed\n", encoding="utf-8")

    with pytest.raises(PolicyError, match="not valid YAML") as refused:
        load_policy(path)
    assert str(path) in str(refused.value)


def test_a_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(PolicyError, match="cannot be read") as refused:
        load_policy(path)
    assert str(path) in str(refused.value)


def test_a_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


def test_a_loaded_policy_cannot_be_changed_afterwards() -> None:
    policy = Policy()

    with pytest.raises(pydantic.ValidationError):
        policy.tier.percentile.vip = Decimal(10)  # type: ignore[misc]
