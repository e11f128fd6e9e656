"""Crypto-shredding end to end on real PostgreSQL and Kafka: personal data never leaves the service in
clear, and after erasure it is nowhere — not in the events, the outbox, any table, the topic, the logs."""

from __future__ import annotations

import json
import logging
import uuid

import httpx
import pytest
from sqlalchemy import text

from customers.application.handlers import CustomerHandlers
from shared.events.registry import parse_envelope
from shared.events.topics import Topics
from shared.messaging.kafka import make_producer
from shared.messaging.relay import OutboxRelay
from shared.runtime import Container
from shared.testing.kafka import read_topic

pytestmark = pytest.mark.integration


async def relay_everything(customers: Container, kafka_bootstrap: str) -> None:
    producer = make_producer(kafka_bootstrap, client_id="customers-erasure-test")
    await producer.start()
    try:
        relay = OutboxRelay(customers.engine, producer, service=f"customers-{uuid.uuid4().hex[:6]}")
        while await relay.publish_batch():
            pass
    finally:
        await producer.stop()


async def texts_of_every_table(customers: Container) -> dict[str, str]:
    """Every row of every table of the service's database, as text (bytea columns decoded)."""
    found: dict[str, str] = {}
    async with customers.engine.connect() as conn:
        tables = (
            await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))
        ).scalars()
        for table in list(tables):
            rows = (await conn.execute(text(f'SELECT t::text FROM "{table}" t'))).scalars().all()
            found[table] = "\n".join(rows)
        values = (await conn.execute(text("SELECT value FROM outbox ORDER BY id"))).scalars().all()
        found["outbox.value"] = "\n".join(bytes(v).decode() for v in values)
    return found


async def kafka_texts(kafka_bootstrap: str, topic: str, expect: int) -> list[str]:
    records = await read_topic(kafka_bootstrap, topic, expect=expect, timeout_s=30)
    assert len(records) == expect
    return [
        b"|".join([record.key or b"", record.value or b"", *(v for _, v in record.headers)]).decode()
        for record in records
    ]


def assert_nowhere(secrets: list[str], places: dict[str, str]) -> None:
    leaks = [(secret, where) for secret in secrets for where, content in places.items() if secret in content]
    assert not leaks, f"personal data found in clear: {leaks}"


async def test_erased_personal_data_is_nowhere_while_the_rest_of_the_file_stays(
    api: httpx.AsyncClient,
    customers: Container,
    handlers: CustomerHandlers,
    topics: Topics,
    kafka_bootstrap: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tag = f"{uuid.uuid4().int % 10**8:08d}"
    phone, email, name = f"+86-138-0000-{tag}", f"buyer.{tag}@example.com", f"Chen Jing {tag}"
    secrets = [phone, email, name]
    cid = f"cust-{tag}"

    r = await api.post("/customers", json={"customer_id": cid, "company_name": "Suzhou Textiles", "region": "East"})
    assert r.status_code == 201
    r = await api.post(
        f"/customers/{cid}/contacts",
        json={"contact_id": "buyer", "role": "purchasing", "name": name, "phone": phone, "email": email,
              "birthday": "1985-07-09"},
        headers={"Idempotency-Key": f"add-buyer-{tag}"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert_nowhere(secrets, {"command answer": r.text})
    terms = {"credit_limit": {"amount": "250000.00", "currency": "CNY"}, "payment_days": 60, "rating": "A"}
    assert (await api.put(f"/customers/{cid}/credit-terms", json=terms)).status_code == 200
    assert (await api.post(f"/customers/{cid}/stage", json={"stage": "customer"})).status_code == 200

    # Before erasure: readable through the API only; encrypted at rest; never published in clear.
    contact = (await api.get(f"/customers/{cid}")).json()["contacts"][0]
    assert (contact["phone"], contact["email"], contact["name"]) == (phone, email, name)
    await relay_everything(customers, kafka_bootstrap)
    published = await kafka_texts(kafka_bootstrap, topics.customers, expect=4)
    assert_nowhere(secrets, {**await texts_of_every_table(customers), "kafka": "\n".join(published)})
    [added] = [parse_envelope(m.split("|", 2)[1]) for m in published if "CustomerContactAdded" in m]
    assert added.data.model_dump(mode="json") == {
        "contact_id": "buyer",
        "role": "purchasing",
        "personal_data_ref": f"pii://customers/{cid}/contacts/buyer",
        "has_phone": True,
        "has_email": True,
    }

    r = await api.post(f"/customers/{cid}/erasure", json={"requested_by": "dpo-desk", "reason": "PIPL art. 47"})
    assert r.status_code == 200, r.text
    await relay_everything(customers, kafka_bootstrap)

    # After erasure: not in any table, not on the topic, and the key is gone.
    published = await kafka_texts(kafka_bootstrap, topics.customers, expect=5)
    assert_nowhere(secrets, {**await texts_of_every_table(customers), "kafka": "\n".join(published)})
    erased = parse_envelope(published[-1].split("|", 2)[1])
    assert erased.event_type == "CustomerPersonalDataErased" and erased.customer_id == cid
    assert erased.data.model_dump(mode="json")["erased_contact_ids"] == ["buyer"]
    async with customers.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM customer_keys WHERE customer_id = :c"), {"c": cid}) == 0

    # The file itself is intact; the contact keeps its id and role, its personal fields read as erased.
    customer = (await api.get(f"/customers/{cid}")).json()
    assert (customer["company_name"], customer["stage"], customer["credit_terms"]["rating"]) == (
        "Suzhou Textiles",
        "customer",
        "A",
    )
    assert customer["credit_terms"]["credit_limit"] == {"amount": "250000.00", "currency": "CNY"}
    assert customer["contacts"] == [
        {
            "contact_id": "buyer",
            "role": "purchasing",
            "has_phone": True,
            "has_email": True,
            "erased": True,
            "name": None,
            "phone": None,
            "email": None,
            "birthday": None,
        }
    ]
    events = (await api.get(f"/customers/{cid}/events")).json()
    assert events[1]["data"]["personal_data"] == {"status": "erased", "algorithm": "AES-256-GCM"}
    assert_nowhere(secrets, {"GET events": json.dumps(events)})

    replayed = await handlers.customers.get(cid)
    assert replayed is not None and replayed.contacts["buyer"].erased and replayed.version == 5

    captured = capsys.readouterr()
    assert_nowhere(secrets, {"stdout": captured.out, "stderr": captured.err, "log records": caplog.text})


async def test_erasing_twice_is_refused_and_new_contacts_get_a_new_key(
    api: httpx.AsyncClient, customers: Container
) -> None:
    cid = f"cust-{uuid.uuid4().hex[:8]}"
    await api.post("/customers", json={"customer_id": cid, "company_name": "A", "region": "B"})
    assert (await api.post(f"/customers/{cid}/erasure", json={})).status_code == 409
    await api.post(f"/customers/{cid}/contacts", json={"contact_id": "k1", "role": "user", "name": "Old Friend"})

    async def key_id() -> uuid.UUID | None:
        async with customers.engine.connect() as conn:
            return await conn.scalar(text("SELECT key_id FROM customer_keys WHERE customer_id = :c"), {"c": cid})

    first_key = await key_id()
    assert first_key is not None
    assert (await api.post(f"/customers/{cid}/erasure", json={})).status_code == 200
    assert await key_id() is None
    assert (await api.post(f"/customers/{cid}/erasure", json={})).status_code == 409

    r = await api.post(f"/customers/{cid}/contacts", json={"contact_id": "k2", "role": "user", "name": "New Friend"})
    assert r.status_code == 201
    assert await key_id() not in (None, first_key)
    contacts = {c["contact_id"]: c for c in (await api.get(f"/customers/{cid}")).json()["contacts"]}
    assert contacts["k1"]["erased"] and contacts["k1"]["name"] is None
    assert not contacts["k2"]["erased"] and contacts["k2"]["name"] == "New Friend"
