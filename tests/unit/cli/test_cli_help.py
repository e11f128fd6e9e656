"""Every command's help reads right: flags show no value type, and every option says what it is for."""

from __future__ import annotations

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from tierstream.cli import app

pytestmark = pytest.mark.unit


def _group() -> TyperGroup:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group


GROUP = _group()
COMMANDS = sorted(GROUP.commands)


def help_of(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", [(), *((name,) for name in COMMANDS)])
def test_flags_take_no_value_in_the_help(command: tuple[str, ...]) -> None:
    text = help_of(*command)
    assert "--help" in text
    assert "<bool>" not in text  # --help, --from-beginning/--no-from-beginning, --payments/--no-payments, …


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_text(name: str) -> None:
    command = GROUP.commands[name]
    undocumented = [p.name for p in command.params if isinstance(p, typer.core.TyperOption) and not p.help]
    assert undocumented == []
