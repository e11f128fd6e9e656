"""``tierstream load`` names what is wrong with the data file, the options or the stack, and exits 1."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tierstream.cli import app, data_commands
from tierstream.dataset import DatasetError, read_rows
from tierstream.loader import LoadReport

pytestmark = pytest.mark.unit

Answers = dict[tuple[str, str], Any]  # the ``answers`` fixture (conftest.py)
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
ROW = "536365,85123A,THING,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())  # as one line, before the terminal wraps it


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "retail.csv"
    path.write_text(HEADER + ROW)
    return path


@pytest.fixture
def stack_up(answers: Answers) -> Answers:
    answers[("GET", "/health/ready")] = (200, {"status": "ready"})  # every service: they differ by port only
    answers[("GET", "/customers")] = (200, {"items": [], "total": 0})
    return answers


def test_a_directory_is_not_taken_for_the_data_file(tmp_path: Path) -> None:
    code, output = run("load", "--data", str(tmp_path))
    assert code == 1
    assert f"--data {tmp_path} is a directory, not the Online Retail CSV file" in output


def test_a_gz_file_that_is_not_gzip_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x.csv.gz"
    path.write_text(HEADER + ROW)
    code, output = run("load", "--data", str(path))
    assert code == 1
    assert f"cannot read {path} as a gzip-compressed CSV" in output and "Traceback" not in output


def test_a_csv_without_the_data_sets_columns_names_the_missing_ones(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("InvoiceNo,Amount,Customer\n1,2,3\n")
    code, output = run("load", "--data", str(path))
    assert code == 1
    assert "lacks the Online Retail column(s) StockCode, Quantity, InvoiceDate, UnitPrice, CustomerID" in output
    assert "(it has: InvoiceNo, Amount, Customer)" in output


def test_an_empty_file_has_no_header_row(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("")
    with pytest.raises(DatasetError, match="it has: no header row"):
        list(read_rows(path))


def test_a_file_of_walk_in_sales_only_is_nothing_to_load(tmp_path: Path) -> None:
    path = tmp_path / "walk-in.csv"
    path.write_text(HEADER + ROW.replace("17850.0", ""))
    code, output = run("load", "--data", str(path))
    assert code == 1
    assert "nothing to load: no order in the 1 rows read (1 no CustomerID" in output


@pytest.mark.parametrize("customers", ["0", "-5"])
def test_a_sample_of_fewer_than_one_customer_is_refused(csv_file: Path, customers: str) -> None:
    code, output = run("load", "--data", str(csv_file), "--customers", customers)
    assert code == 2
    assert "--customers" in output


def test_a_refused_token_stops_the_load_before_it_sends_anything(
    csv_file: Path, stack_up: Answers, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_up[("GET", "/customers")] = (401, {"detail": "invalid bearer token"})
    monkeypatch.setattr(data_commands, "load", None)  # calling it would fail the test
    code, output = run("load", "--data", str(csv_file), "--no-feedback")
    assert code == 1
    assert "the customers API refused the token (HTTP 401: invalid bearer token)" in output


def test_a_stack_that_is_not_ready_stops_the_load(csv_file: Path, stack_up: Answers) -> None:
    stack_up[("GET", "/health/ready")] = (503, {"detail": "database unreachable"})
    code, output = run("load", "--data", str(csv_file))
    assert code == 1
    assert "the customers API answered HTTP 503 to GET /health/ready: database unreachable" in output


def test_a_load_with_failed_commands_exits_1(
    csv_file: Path, stack_up: Answers, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_load(*args: object, **kwargs: object) -> LoadReport:
        report = LoadReport(created=Counter(customers=1))
        report.failed["orders"] += 1
        report.failures.append("orders: HTTP 422: lines: at least one line")
        return report

    monkeypatch.setattr(data_commands, "load", failing_load)
    code, output = run("load", "--data", str(csv_file), "--no-feedback")
    assert code == 1
    assert "failed: orders: HTTP 422: lines: at least one line" in output
    assert "1 commands failed (the first 1 reasons above); run the load again to retry them" in output
