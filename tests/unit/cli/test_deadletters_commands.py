"""``tierstream deadletters list | redrive``: what they print, what they send, and how they fail."""

from __future__ import annotations

import json

import pytest
from rich.console import Console
from test_deadletters import FakeReader, FakeRecord, letter, original_record, with_field
from typer.testing import CliRunner

from tierstream import deadletters, deadletters_cli
from tierstream.cli import app
from tierstream.deadletters import Original, Scan, parse_record

pytestmark = pytest.mark.unit

PARTITIONS = {"t1.crm.orders.v1": {0, 1, 2}, "t1.crm.deadletter.v1": {0, 1}}


def orders_record(offset: int) -> object:
    return original_record(
        topic="t1.crm.orders.v1", partition=2, offset=offset, headers=[("event_id", b"e-%d" % offset)]
    )


RECORDS = [
    letter((0, 0), orders_record(10), group="t1.segmentation.projector"),
    letter((0, 1), orders_record(11), group="t1.orders.credit-terms", reason="unknown_event_type"),
    with_field(letter((1, 0), orders_record(12), group="t1.segmentation.projector"), withheld=["/data/reason"]),
    FakeRecord(1, 1, None, b"{not json"),
    letter((1, 2), orders_record(13), group="t1.segmentation.projector"),
]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Original]:
    """The dead-letter topic holds ``RECORDS``; what ``redrive`` sends is collected here."""
    collected: list[Original] = []

    async def fake_scan(topic: str, bootstrap: str) -> Scan:
        assert (topic, bootstrap) == ("t1.crm.deadletter.v1", "127.0.0.1:9")
        return Scan([parse_record(r) for r in RECORDS], PARTITIONS)

    async def fake_republish(originals: list[Original], bootstrap: str) -> int:
        collected.extend(originals)
        return len(originals)

    monkeypatch.setattr(deadletters, "scan", fake_scan)
    monkeypatch.setattr(deadletters, "republish", fake_republish)
    # wide enough for a table row on one line (the test terminal has 80 columns)
    monkeypatch.setattr(deadletters_cli, "console", Console(width=250))
    return collected


def invoke(*args: str, answer: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["deadletters", *args, "--bootstrap", "127.0.0.1:9", "--namespace", "t1."], input=answer
    )
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_each_dead_letter_and_counts_them_by_group_and_reason(sent: list[Original]) -> None:
    code, out, err = invoke("list")
    assert code == 0, out + err
    assert "4 of 4 dead letters" in out
    assert "t1.crm.orders.v1:2@10" in out and "OrderPlaced" in out and "e-10" in out
    assert "handler_failed (withheld)" in out
    summary = out[out.index("by group and reason") :]
    rows = [[cell.strip() for cell in line.split("│")[1:4]] for line in summary.splitlines() if "│" in line]
    assert rows == [
        ["t1.orders.credit-terms", "unknown_event_type", "1"],
        ["t1.segmentation.projector", "handler_failed", "3"],
    ]
    assert "and 1 record of the topic that is not a dead letter" in out
    assert "skipped record 1@1 of the dead-letter topic: not DeadLetter JSON" in err
    assert sent == []


def test_list_json_prints_one_object_per_dead_letter_for_scripts(sent: list[Original]) -> None:
    code, out, _ = invoke("list", "--json", "--group", "segmentation.projector", "--limit", "2")
    assert code == 0
    objects = [json.loads(line) for line in out.splitlines()]
    assert [(o["partition"], o["offset"]) for o in objects] == [(1, 0), (1, 2)]  # the two most recent
    assert objects[0]["original"] == {"topic": "t1.crm.orders.v1", "partition": 2, "offset": 12}
    assert (objects[0]["event_id"], objects[0]["withheld"]) == ("e-12", ["/data/reason"])
    assert objects[1]["consumer_group"] == "t1.segmentation.projector" and objects[1]["reason"] == "handler_failed"


def test_redrive_sends_the_group_s_originals_and_skips_the_ones_withholding_personal_data(
    sent: list[Original],
) -> None:
    code, out, err = invoke("redrive", "--group", "segmentation.projector", "--yes")
    assert code == 0, out + err
    assert [(o.topic, o.partition, o.headers) for o in sent] == [
        ("t1.crm.orders.v1", 2, [("event_id", b"e-10")]),
        ("t1.crm.orders.v1", 2, [("event_id", b"e-13")]),
    ]
    assert "skipped dead letter 1@0: its value withholds personal data (/data/reason)" in err
    assert "sent 2 records to their original topics; skipped: 1 withholding personal data, 1 unreadable" in out


def test_redrive_asks_first_and_sends_nothing_when_refused(sent: list[Original]) -> None:
    code, out, err = invoke("redrive", "--group", "segmentation.projector", answer="n\n")
    assert code == 1
    assert "2 dead letters of segmentation.projector to re-drive" in out
    assert "Re-drive 2 dead letters to their original topics? [y/N]" in out and "Aborted" in err
    assert sent == []
    code, out, _ = invoke("redrive", "--group", "segmentation.projector", "--offset", "0@0", answer="y\n")
    assert code == 0 and [o.headers for o in sent] == [[("event_id", b"e-10")]]


def test_a_dry_run_only_shows_what_would_be_sent(sent: list[Original]) -> None:
    code, out, _ = invoke("redrive", "--group", "orders.credit-terms", "--dry-run")
    assert code == 0
    assert "1 dead letter of orders.credit-terms to re-drive" in out and "t1.crm.orders.v1:2@11" in out
    assert "dry run: nothing sent; skipped: 0 withholding personal data, 1 unreadable records" in out
    assert sent == []


def test_redrive_needs_a_group_and_fails_on_an_offset_it_cannot_place(sent: list[Original]) -> None:
    code, out, err = invoke("redrive", "--yes")
    assert code == 2 and "--group" in out + err
    code, out, _ = invoke("redrive", "--group", "segmentation.projektor", "--yes")
    assert code == 0
    assert "no dead letter of group 'segmentation.projektor' matches; groups with dead letters: " in out
    assert "t1.orders.credit-terms, t1.segmentation.projector" in out
    code, _, err = invoke("redrive", "--group", "segmentation.projector", "--offset", "1", "--yes")
    assert code == 1 and "error: --offset 1 matches no dead letter of the selection" in err
    assert sent == []


def test_an_unreachable_kafka_ends_the_command_with_a_message_and_exit_code_1(monkeypatch: pytest.MonkeyPatch) -> None:
    readers: list[FakeReader] = []

    def unreachable(bootstrap: str) -> FakeReader:
        readers.append(FakeReader(down=True))
        return readers[-1]

    monkeypatch.setattr(deadletters, "KafkaReader", unreachable)
    for command in (["list"], ["redrive", "--group", "g", "--yes"]):
        code, _, err = invoke(*command)
        assert code == 1
        assert "error: cannot reach Kafka at 127.0.0.1:9" in err and "Traceback" not in err
    assert len(readers) == 2 and all(r.stopped for r in readers)
