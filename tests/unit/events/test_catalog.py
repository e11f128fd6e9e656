"""The published catalogue (docs/asyncapi.yaml, docs/events.md) is exactly what the code generates."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.structs import ConsumerRecord

from shared.events import REGISTRY, TOPIC_OF_PRODUCER, topics
from shared.events.catalog import ASYNCAPI_FILE, EVENTS_FILE, generate, main, stale
from shared.events.deadletters import DeadLetter
from shared.messaging.deadletter import dead_letter
from shared.messaging.kafka import TOPIC_CONFIG

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[3] / "docs"


def asyncapi() -> dict[str, Any]:
    return yaml.safe_load((DOCS / ASYNCAPI_FILE).read_text(encoding="utf-8"))


def test_the_committed_catalogue_equals_freshly_generated_output() -> None:
    differing = stale(DOCS)
    assert not differing, (
        "The event catalogue is out of date; run `python -m shared.events.catalog` (make docs) and commit:\n"
        + "\n\n".join(differing.values())
    )


def test_generation_is_deterministic() -> None:
    assert generate() == generate()


def test_check_exits_1_naming_the_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, content in generate().items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    assert main(["--check", "--docs-dir", str(tmp_path)]) == 0

    (tmp_path / EVENTS_FILE).write_text("# edited by hand\n", encoding="utf-8")
    assert main(["--check", "--docs-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / EVENTS_FILE) in err and str(tmp_path / ASYNCAPI_FILE) not in err


def test_writing_creates_both_files(tmp_path: Path) -> None:
    assert main(["--docs-dir", str(tmp_path / "docs")]) == 0
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == sorted([ASYNCAPI_FILE, EVENTS_FILE])
    assert not stale(tmp_path / "docs")


def test_the_asyncapi_document_lists_every_registered_event_type_on_its_topic() -> None:
    document = asyncapi()
    messages = document["components"]["messages"]
    registered = {f"{m.event_type}.v{m.schema_version}" for m in REGISTRY.models()}

    assert document["asyncapi"] == "2.6.0"
    assert set(messages) == registered | {"DeadLetter"}
    assert list(document["channels"]) == list(topics.CONTRACT_TOPICS)
    on_channels: set[str] = set()
    for topic, channel in document["channels"].items():
        message = channel["subscribe"]["message"]
        names = {m["$ref"].removeprefix("#/components/messages/") for m in message.get("oneOf", [message])}
        if topic != topics.DEADLETTER:
            assert {messages[n]["x-producer"] for n in names} == {_producer_of(topic)}, topic
        on_channels |= names
    assert on_channels == registered | {"DeadLetter"}


def _producer_of(topic: str) -> str:
    [producer] = [p for p, t in TOPIC_OF_PRODUCER.items() if t == topic]
    return producer


def test_every_message_is_keyed_by_customer_id_and_carries_the_routing_headers() -> None:
    for name, message in asyncapi()["components"]["messages"].items():
        assert "key" in message["bindings"]["kafka"], name
        if name == "DeadLetter":
            continue
        event_type, version = name.rsplit(".v", 1)
        assert message["x-key"] == "customer_id"
        assert message["headers"]["required"] == ["event_id", "event_type", "schema_version", "correlation_id"]
        assert message["headers"]["properties"]["event_type"]["const"] == event_type
        payload = message["payload"]["properties"]
        assert payload["event_type"]["const"] == event_type and payload["schema_version"]["const"] == int(version)
        assert payload["data"]["$ref"] == f"#/components/schemas/{name}"


def test_every_reference_in_the_asyncapi_document_resolves() -> None:
    document = asyncapi()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return own + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        target: Any = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


def test_topics_are_documented_with_the_configuration_they_are_created_with() -> None:
    for channel in asyncapi()["channels"].values():
        configuration = channel["bindings"]["kafka"]["topicConfiguration"]
        as_created = {k: [v] if k == "cleanup.policy" else int(v) for k, v in TOPIC_CONFIG.items()}
        assert configuration == as_created


def test_events_md_has_a_section_and_field_table_for_every_event_type() -> None:
    text = (DOCS / EVENTS_FILE).read_text(encoding="utf-8")
    for model in REGISTRY.models():
        section = f"### {model.event_type} v{model.schema_version}\n"
        assert section in text, section
        body = text.split(section, 1)[1].split("\n### ", 1)[0]
        for field in model.model_fields:
            assert f"| `{field}` |" in body, (model.event_type, field)


def test_dead_letters_written_by_consumers_match_the_documented_format() -> None:
    record = ConsumerRecord(
        topic="crm.orders.v1",
        partition=2,
        offset=41,
        timestamp=1_767_225_600_000,
        timestamp_type=0,
        key=b"c-1",
        value=b"\xff\xfe not utf-8",
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=13,
        headers=[("event_type", b"OrderPlaced"), ("blob", b"\x80")],
    )
    message = dead_letter(
        record,
        topic="crm.deadletter.v1",
        consumer_group="segmentation",
        reason="malformed_json",
        detail="Expecting value: line 1 column 1 (char 0)",
        exception=ValueError("boom"),
    )

    letter = DeadLetter.model_validate(json.loads(message.value))

    assert letter.reason == "malformed_json" and letter.original.offset == 41
    assert letter.value is not None and letter.value.encoding == "base64"
    assert letter.original.headers[0][1] is not None and letter.original.headers[0][1].data == "OrderPlaced"
    assert isinstance(letter.dead_lettered_at, datetime)
