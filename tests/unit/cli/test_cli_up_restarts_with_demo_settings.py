"""A service that ``tierstream up`` starts again gets the settings the stack's services were started with
(the demo's clock, remembered under the run directory until ``tierstream down``); the environment wins."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tierstream import stack
from tierstream.cli import app, base, data_commands
from tierstream.cli.data_commands import demo_clock

pytestmark = pytest.mark.unit

AS_OF = datetime(2011, 12, 10, tzinfo=UTC)
ANCHOR = datetime(2026, 11, 24, 7, 53, 32, tzinfo=UTC)
INFRA = stack.Infra(bootstrap_servers="127.0.0.1:9092", pg_url="postgresql://u:p@127.0.0.1:55432/postgres")
#: a PID no process has (above Linux's pid_max): a service "started" with it is not running afterwards
NO_SUCH_PID = 99_999_999


class FakeLauncher:
    """Records what each service would have been started with instead of starting it."""

    def __init__(self) -> None:
        self.started: dict[str, dict[str, str]] = {}

    def __call__(self, command: list[str], env: dict[str, str], log_file: Path) -> int:
        service = command[command.index("-m") + 1]
        self.started[service] = env
        return NO_SUCH_PID


@pytest.fixture
def launcher() -> FakeLauncher:
    return FakeLauncher()


@pytest.fixture
def config(tmp_path: Path, launcher: FakeLauncher, monkeypatch: pytest.MonkeyPatch) -> stack.StackConfig:
    """The stack's state under ``tmp_path``; processes go to the fake launcher; Kafka and PostgreSQL "start"
    at once and every service is "ready" (no process, no HTTP)."""
    real_config = base.stack_config

    def config_in_tmp(*args: int) -> stack.StackConfig:
        made = real_config(*args)
        made.state_dir, made.launch = tmp_path, launcher
        return made

    monkeypatch.setattr(base, "stack_config", config_in_tmp)
    monkeypatch.setattr(stack, "start_infra", lambda config: INFRA)
    monkeypatch.setattr(stack, "stop_infra", lambda config: None)
    monkeypatch.setattr(stack, "wait_ready", lambda config, service: None)
    for name in ("SEGMENTATION_CLOCK_START", "SEGMENTATION_CLOCK_ANCHOR", "ORDERS_CLOCK_START"):
        monkeypatch.delenv(name, raising=False)
    return config_in_tmp()


def test_a_service_started_again_gets_the_remembered_settings(
    config: stack.StackConfig, launcher: FakeLauncher
) -> None:
    stack.remember_settings(config, "demo", demo_clock(AS_OF, ANCHOR))
    stack.start_service(config, INFRA, "segmentation")
    env = launcher.started["segmentation"]
    assert env["SEGMENTATION_CLOCK_START"] == "2011-12-10T00:00:00+00:00"
    assert env["SEGMENTATION_CLOCK_ANCHOR"] == "2026-11-24T07:53:32+00:00"
    assert env["SEGMENTATION_HTTP_PORT"] == "8004"  # the stack's wiring is still there


def test_a_variable_set_in_the_environment_wins_over_the_remembered_one(
    config: stack.StackConfig, launcher: FakeLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.remember_settings(config, "demo", demo_clock(AS_OF, ANCHOR))
    monkeypatch.setenv("SEGMENTATION_CLOCK_START", "2011-06-01T00:00:00+00:00")
    stack.start_service(config, INFRA, "segmentation")
    env = launcher.started["segmentation"]
    assert env["SEGMENTATION_CLOCK_START"] == "2011-06-01T00:00:00+00:00"
    assert env["SEGMENTATION_CLOCK_ANCHOR"] == "2026-11-24T07:53:32+00:00"


def test_up_restarts_a_missing_service_with_the_demos_clock_and_says_so(
    config: stack.StackConfig, launcher: FakeLauncher
) -> None:
    stack.remember_settings(config, "demo", demo_clock(AS_OF, ANCHOR))
    result = CliRunner().invoke(app, ["up"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert (
        "restarting segmentation with the demo's clock from 2011-12-10T00:00:00+00:00, anchored at "
        "2026-11-24T07:53:32+00:00: it continues at 2011-12-1" in said
    )
    assert "restarting customers" in said
    for service in ("segmentation", "orders", "feedback"):
        assert launcher.started[service][f"{service.upper()}_CLOCK_START"] == AS_OF.isoformat()
        assert launcher.started[service][f"{service.upper()}_CLOCK_ANCHOR"] == ANCHOR.isoformat()


def test_up_names_the_remembered_settings_the_environment_overrides(
    config: stack.StackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.remember_settings(config, "demo", demo_clock(AS_OF, ANCHOR))
    monkeypatch.setenv("ORDERS_CLOCK_START", "2011-06-01T00:00:00+00:00")
    result = CliRunner().invoke(app, ["up"])
    assert "ORDERS_CLOCK_START from the environment instead of the demo's" in " ".join(result.output.split())


def test_a_plain_up_on_a_fresh_stack_starts_the_services_without_a_simulated_clock(
    config: stack.StackConfig, launcher: FakeLauncher
) -> None:
    result = CliRunner().invoke(app, ["up"])
    assert result.exit_code == 0, result.output
    assert "restarting" not in result.output
    assert set(launcher.started) == set(stack.SERVICES)
    assert not any("_CLOCK_" in name for env in launcher.started.values() for name in env)


def test_the_demo_remembers_one_anchored_clock_for_every_clocked_service(config: stack.StackConfig) -> None:
    data_commands._use_demo_clock(config, AS_OF)
    remembered = stack.remembered_settings(config)
    assert remembered is not None and remembered.origin == "demo"
    anchors = {remembered.env[f"{s}_CLOCK_ANCHOR"] for s in ("SEGMENTATION", "ORDERS", "FEEDBACK")}
    assert len(anchors) == 1
    assert abs(datetime.fromisoformat(anchors.pop()) - datetime.now(UTC)).total_seconds() < 60
    assert {remembered.env[f"{s}_CLOCK_START"] for s in ("SEGMENTATION", "ORDERS", "FEEDBACK")} == {AS_OF.isoformat()}
    assert config.extra_env == remembered.env  # what the demo starts the services with


def test_a_demo_run_again_on_the_same_days_data_continues_the_remembered_clock(config: stack.StackConfig) -> None:
    stack.remember_settings(config, "demo", demo_clock(AS_OF, ANCHOR))
    data_commands._use_demo_clock(config, AS_OF)
    remembered = stack.remembered_settings(config)
    assert remembered is not None and remembered.env == demo_clock(AS_OF, ANCHOR)


def test_down_forgets_the_settings_so_the_next_up_starts_a_fresh_stack(
    config: stack.StackConfig, launcher: FakeLauncher
) -> None:
    stack.remember_settings(config, "demo", demo_clock(AS_OF, ANCHOR))
    result = CliRunner().invoke(app, ["down"])
    assert result.exit_code == 0, result.output
    assert stack.remembered_settings(config) is None
    CliRunner().invoke(app, ["up"])
    assert "SEGMENTATION_CLOCK_START" not in launcher.started["segmentation"]


def test_a_damaged_settings_file_is_named_with_what_to_do(config: stack.StackConfig) -> None:
    config.run_dir.mkdir(parents=True)
    (config.run_dir / "service-settings.json").write_text("{not json")
    result = CliRunner().invoke(app, ["up"])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "service-settings.json is not what tierstream wrote" in said and "delete it" in said
