"""The CLI names the problem with bad input before it calls anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

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
