"""Dead letters: what a consumer could not apply, with the reason, and nothing lost.

A dead letter is itself written to the consumer's outbox in the transaction that advances its offset,
so the original message is either applied or dead-lettered, never dropped. The value is a JSON object
(format ``DeadLetter`` v1, documented in docs/events.md): reason, detail, exception, the original
coordinates, key, headers and value (UTF-8 text, else base64).

One exception to "byte for byte": a record refused because text in it looks like personal data keeps
that text out of the dead letter too (dead letters are kept like events, and nothing erases them). Its
value is the parsed document with every such string replaced (``withheld`` lists where), so the dead
letter still says which event it was and what else it held; the producer must send the event again
without the personal data.
"""

from __future__ import annotations

import base64
import json
import traceback
from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord

from shared.events.personal_data import withhold_personal_data
from shared.messaging.outbox import OutboxMessage

DEADLETTER_FORMAT_VERSION = 1


def _text_or_base64(raw: bytes | None) -> dict[str, str] | None:
    if raw is None:
        return None
    try:
        return {"encoding": "utf-8", "data": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(raw).decode()}


def dead_letter(
    record: ConsumerRecord,
    *,
    topic: str,
    consumer_group: str,
    reason: str,
    detail: str,
    exception: BaseException | None = None,
    personal_data: bool = False,
) -> OutboxMessage:
    """The dead letter of ``record``. ``personal_data``: it was refused (also) for text that looks like
    personal data, which the dead letter then withholds."""
    value = _text_or_base64(record.value)
    withheld: list[str] = []
    if personal_data and record.value is not None:
        document, withheld = withhold_personal_data(json.loads(record.value.decode("utf-8")))
        value = {"encoding": "utf-8", "data": json.dumps(document, ensure_ascii=False, separators=(",", ":"))}
    exc_text = None
    if exception is not None:
        exc_text = "".join(traceback.format_exception_only(type(exception), exception)).strip()[:2000]
    body = {
        "format": "DeadLetter",
        "format_version": DEADLETTER_FORMAT_VERSION,
        "reason": reason,
        "detail": detail[:4000],
        "exception": exc_text,
        "consumer_group": consumer_group,
        "original": {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp_ms": record.timestamp,
            "key": _text_or_base64(record.key),
            "headers": [[k, _text_or_base64(v)] for k, v in (record.headers or ())],
        },
        "value": value,
        "withheld": withheld,
        "dead_lettered_at": datetime.now(UTC).isoformat(),
    }
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    return OutboxMessage(
        topic=topic,
        key=key,
        value=json.dumps(body, separators=(",", ":")).encode(),
        headers=(
            ("dlq_reason", reason),
            ("dlq_original_topic", record.topic),
            ("dlq_original_partition", str(record.partition)),
            ("dlq_original_offset", str(record.offset)),
            ("dlq_consumer_group", consumer_group),
        ),
    )
