"""Fault-injection points are inert unless armed, and refused in production."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.faults import KILLED_EXIT_CODE, FaultInjectionRefused, fault_point

pytestmark = pytest.mark.unit


def test_an_unarmed_point_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIERSTREAM_FAULT_INJECT", raising=False)
    fault_point("relay_exit_after_ack")
    monkeypatch.setenv("TIERSTREAM_FAULT_INJECT", "another_point")
    fault_point("relay_exit_after_ack")


def test_an_armed_point_raises_instead_of_exiting_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERSTREAM_FAULT_INJECT", "relay_exit_after_ack")
    monkeypatch.setenv("TIERSTREAM_ENV", "production")
    with pytest.raises(FaultInjectionRefused):
        fault_point("relay_exit_after_ack")


def test_an_armed_point_kills_the_process_on_the_spot() -> None:
    code = "from shared.faults import fault_point\nfault_point('p')\nprint('survived')"
    env = {"TIERSTREAM_FAULT_INJECT": "p", "TIERSTREAM_ENV": "test", "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == KILLED_EXIT_CODE
    assert "survived" not in result.stdout
