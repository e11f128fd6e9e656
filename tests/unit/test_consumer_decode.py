"""The shared consumer's decode step: a record is an event to apply, or a dead letter with a clear reason.

A record whose key is not its envelope's customer_id (docs/events.md: Key = customer_id) used to be
applied silently; a value that is not UTF-8 was dead-lettered with a codec message; and the log line of
an invalid event said neither why nor which event. No broker and no database are needed here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

import shared.messaging.consumer as consumer_module
from shared.events.deadletters import DeadLetter
from shared.events.personal_data import WITHHELD
from shared.messaging.consumer import ProjectionConsumer
from shared.testing.events import customer_registered

pytestmark = pytest.mark.unit

REGISTERED = customer_registered("c-1")


def record(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> ConsumerRecord:
    return ConsumerRecord("t.customers", 1, 41, 0, 0, key, value, None, 0, len(value), headers or [])


@pytest.fixture
def consumer(offline_consumer: Callable[..., ProjectionConsumer]) -> ProjectionConsumer:
    """A ProjectionConsumer whose Kafka client, engine and projection are never reached."""
    return offline_consumer()


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


def letter_of(decoded: Any) -> DeadLetter:
    assert decoded.envelope is None and decoded.dead is not None
    return DeadLetter.model_validate(json.loads(decoded.dead.value))


def test_a_record_keyed_by_its_customer_id_is_decoded(consumer: ProjectionConsumer) -> None:
    decoded = consumer._decode(record(b"c-1", REGISTERED.to_json()))

    assert decoded.envelope == REGISTERED and decoded.dead is None


@pytest.mark.parametrize("key", [b"c-2", b"C-1", b"", None], ids=repr)
def test_a_record_whose_key_is_not_its_customer_id_is_dead_lettered(
    consumer: ProjectionConsumer, key: bytes | None
) -> None:
    decoded = consumer._decode(record(key, REGISTERED.to_json()))

    letter = letter_of(decoded)
    shown = key.decode() if key is not None else None
    assert letter.reason == "key_mismatch"
    assert f"record key {shown!r} differs from the envelope's customer_id 'c-1'" in letter.detail
    assert decoded.dead is not None and dict(decoded.dead.headers)["dlq_reason"] == "key_mismatch"


def test_a_value_that_is_not_utf8_is_dead_lettered_saying_so(consumer: ProjectionConsumer) -> None:
    decoded = consumer._decode(record(b"c-1", REGISTERED.to_json().decode().encode("utf-16")))

    letter = letter_of(decoded)
    assert letter.reason == "malformed_json" and "not UTF-8" in letter.detail
    assert letter.value is not None and letter.value.encoding == "base64"  # the original bytes, kept


def test_the_invalid_event_log_line_says_why_and_which_event_without_the_payload(
    consumer: ProjectionConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = json.loads(REGISTERED.to_json())
    document["data"]["company_name"] = ""  # invalid; the rest of the payload must not be logged
    log = RecordingLog()
    monkeypatch.setattr(consumer_module, "log", log)

    consumer_module._log_invalid(consumer._decode(record(b"c-1", json.dumps(document).encode())))

    [(event, fields)] = log.lines
    assert event == "consumer.invalid_event"
    assert fields == {
        "topic": "t.customers",
        "partition": 1,
        "offset": 41,
        "reason": "invalid_payload",
        "detail": "company_name: String should have at least 1 character",
        "event_type": "CustomerRegistered",
        "event_id": str(REGISTERED.event_id),
    }
    assert "Acme" not in repr(fields) and "East" not in repr(fields)


def test_the_log_line_of_an_unreadable_value_takes_type_and_id_from_the_headers(
    consumer: ProjectionConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RecordingLog()
    monkeypatch.setattr(consumer_module, "log", log)
    headers = [(k, v) for k, v in REGISTERED.headers() if k in ("event_id", "event_type")]

    consumer_module._log_invalid(consumer._decode(record(b"c-1", b"\xff{not json", headers)))

    [(_, fields)] = log.lines
    assert fields["reason"] == "malformed_json" and fields["detail"].startswith("not UTF-8: ")
    assert (fields["event_type"], fields["event_id"]) == ("CustomerRegistered", str(REGISTERED.event_id))


def test_the_log_line_of_a_key_mismatch_names_the_event(
    consumer: ProjectionConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RecordingLog()
    monkeypatch.setattr(consumer_module, "log", log)

    consumer_module._log_invalid(consumer._decode(record(b"c-2", REGISTERED.to_json())))

    [(_, fields)] = log.lines
    assert fields["reason"] == "key_mismatch" and "differs from the envelope's customer_id" in fields["detail"]
    assert (fields["event_type"], fields["event_id"]) == ("CustomerRegistered", str(REGISTERED.event_id))


PHONE, EMAIL = "+86-138-0000-7732", "li.wei@example.com"


def deactivation(reason: str, **more_data: Any) -> bytes:
    """A CustomerDeactivated record value of c-1 with ``reason`` (and unknown fields ``more_data``)."""
    document = json.loads(REGISTERED.to_json())
    document["event_type"] = "CustomerDeactivated"
    document["data"] = {"reason": reason, **more_data}
    return json.dumps(document).encode()


def test_text_refused_as_personal_data_is_withheld_from_the_dead_letter(consumer: ProjectionConsumer) -> None:
    value = deactivation(f"moved; call {PHONE} or write to {EMAIL}")

    decoded = consumer._decode(record(b"c-1", value))

    letter = letter_of(decoded)
    assert letter.reason == "invalid_payload" and "reason: Value error, looks like" in letter.detail
    assert letter.withheld == ["/data/reason"]
    assert letter.value is not None and letter.value.encoding == "utf-8"
    kept = json.loads(letter.value.data)
    assert kept["data"]["reason"] == WITHHELD
    assert kept["event_id"] == str(REGISTERED.event_id) and kept["event_type"] == "CustomerDeactivated"
    assert decoded.dead is not None
    # Nowhere in the letter; whole, since a short fragment may turn up in a random event id or a timestamp.
    assert PHONE.encode() not in decoded.dead.value and b"li.wei" not in decoded.dead.value


def test_every_string_that_looks_like_personal_data_is_withheld_not_only_the_refused_field(
    consumer: ProjectionConsumer,
) -> None:
    value = deactivation(f"ring {PHONE}", extra={"a/b": ["fine", EMAIL], "n": 12345678})

    letter = letter_of(consumer._decode(record(b"c-1", value)))

    assert letter.withheld == ["/data/reason", "/data/extra/a~1b/1"]
    assert letter.value is not None
    assert json.loads(letter.value.data)["data"]["extra"] == {"a/b": ["fine", WITHHELD], "n": 12345678}


@pytest.mark.parametrize(
    "value",
    [
        deactivation(""),  # invalid, but not for personal data
        b'{"event_type": "NoSuchEvent", "note": "' + EMAIL.encode() + b'"}',  # not validated: nothing known
    ],
    ids=["blank reason", "unknown event type"],
)
def test_a_record_refused_for_another_reason_is_kept_byte_for_byte(consumer: ProjectionConsumer, value: bytes) -> None:
    letter = letter_of(consumer._decode(record(b"c-1", value)))

    assert letter.withheld == []
    assert letter.value is not None and letter.value.data.encode() == value
