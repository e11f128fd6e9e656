"""The CLI names the problem with bad input before it calls anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tierstream import stack
from tierstream.cli import app
from tierstream.streams import summary

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("args", "option"),
    [(["recalibrate", "--as-of", "last tuesday"], "--as-of"), (["rebuild", "--clock", "2011-13-01"], "--clock")],
)
def test_a_bad_instant_is_refused_with_a_message_naming_the_option(args: list[str], option: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert option in result.output and "ISO 8601" in result.output


def test_event_summaries_are_one_short_line_of_scalars() -> None:
    data = {"customer_id": "c1", "total": {"amount": "10.00", "currency": "GBP"}, "lines": [{"sku": "S"}], "n": 3}
    assert summary({**data, "phone": "pii://c1/phone"}) == "total=10.00 GBP, n=3, phone=pii://c1/phone"
    assert summary({"note": "x" * 200}, width=20) == "note=" + "x" * 14 + "…"


def test_rebuild_reports_the_operator_actions_it_replayed_and_the_alerts_it_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json
    import subprocess

    report = {
        "identical": True,
        "schema": "rebuild_x",
        "events_replayed": 12,
        "tables": [
            {"table": "customer_segments", "live_rows": 3, "rebuilt_rows": 3, "equal": True, "differing_keys": []}
        ],
        "alerts_not_compared": {"in_hysteresis_band": 0, "with_an_operator_action_not_replayed": 2},
        "operator_actions_replayed": 5,
    }
    answer = subprocess.CompletedProcess([], 0, stdout=json.dumps(report), stderr="")
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: answer)
    monkeypatch.setattr(stack, "listening", lambda port: True)  # Kafka and PostgreSQL are up
    result = CliRunner().invoke(app, ["rebuild", "--clock", "2011-12-10"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # as the terminal wraps it
    assert "5 operator actions on churn alerts applied again where they were taken" in said
    assert (
        "churn alerts not compared (see docs/segmentation.md, rebuild): 2 with an operator action not replayed" in said
    )
    assert "hysteresis" not in said  # a reason with nothing left out is not listed
