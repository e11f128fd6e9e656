"""Crypto-shredding codec and the public mapping, with an in-memory key store (no I/O)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from customers.adapters.codec import PersonalDataCodec
from customers.adapters.crypto import CorruptCiphertext, DataKey, open_sealed, seal
from customers.application.public_events import to_public
from customers.domain.customer import Customer, Profile
from customers.domain.events import STORED_EVENTS, PersonalData
from shared.events import customers as contract
from shared.events.envelope import Envelope
from shared.events.vocabulary import ContactRole
from shared.eventsourcing.store import StoredEvent, TransactionHook

pytestmark = pytest.mark.unit

PHONE = "+86-138-0000-4242"
EMAIL = "li.lei@example.com"
PERSON = PersonalData(name="Li Lei", phone=PHONE, email=EMAIL, birthday=date(1988, 3, 14))


class InMemoryKeys:
    """The key store's contract (see tests/integration/customers for PostgreSQL): hooks run at commit."""

    def __init__(self) -> None:
        self.keys: dict[str, DataKey] = {}

    async def find(self, customer_id: str) -> DataKey | None:
        return self.keys.get(customer_id)

    def changes(self, customer_id: str, *, delete_current: bool, create: DataKey | None) -> TransactionHook | None:
        if not delete_current and create is None:
            return None

        async def apply(_conn: Any) -> None:
            if delete_current:
                self.keys.pop(customer_id, None)
            if create is not None:
                assert customer_id not in self.keys
                self.keys[customer_id] = create

        return apply


def stored(customer: Customer, data: list[dict[str, Any]]) -> list[StoredEvent]:
    events = customer.pending_events
    return [
        StoredEvent(
            position=n,
            stream_id=customer.stream_id,
            stream_version=n,
            aggregate_type="customer",
            event_id=uuid.uuid4(),
            event_type=type(e).event_type,  # type: ignore[attr-defined]
            schema_version=1,
            occurred_at=datetime.now(UTC),
            data=d,
            metadata={},
        )
        for n, (e, d) in enumerate(zip(events, data, strict=True), start=1)
    ]


async def save(codec: PersonalDataCodec, customer: Customer) -> list[dict[str, Any]]:
    """Encode the pending events and 'commit' (run the hook), as the repository does."""
    encoded = await codec.encode(customer, customer.pending_events)
    if encoded.hook is not None:
        await encoded.hook(None)  # type: ignore[arg-type]  # the fake ignores the connection
    return encoded.data


@pytest.fixture
def keys() -> InMemoryKeys:
    return InMemoryKeys()


@pytest.fixture
def codec(keys: InMemoryKeys) -> PersonalDataCodec:
    return PersonalDataCodec(keys, STORED_EVENTS)


def new_customer_with_contact() -> Customer:
    customer = Customer.register("c-9", Profile(company_name="Acme", region="East"))
    customer.add_contact("k1", ContactRole.DECISION_MAKER, PERSON)
    return customer


async def test_personal_data_is_stored_sealed_and_loads_in_clear(codec: PersonalDataCodec, keys: InMemoryKeys) -> None:
    customer = new_customer_with_contact()
    data = await save(codec, customer)
    text = json.dumps(data)
    assert PHONE not in text and EMAIL not in text and "Li Lei" not in text and "1988-03-14" not in text
    assert data[1]["personal_data"]["alg"] == "AES-256-GCM" and data[1]["role"] == "decision_maker"
    assert "c-9" in keys.keys, "the first personal data created the customer's key"
    history = stored(customer, data)
    decoded = await codec.decode("c-9", history)
    assert decoded[1]["personal_data"] == PERSON.model_dump(mode="json")
    assert decoded[0] == data[0], "events without personal data pass through"


async def test_registration_alone_creates_no_key(codec: PersonalDataCodec, keys: InMemoryKeys) -> None:
    customer = Customer.register("c-9", Profile(company_name="Acme", region="East"))
    await save(codec, customer)
    assert keys.keys == {}


async def test_after_erasure_the_key_is_gone_and_personal_data_loads_as_none(
    codec: PersonalDataCodec, keys: InMemoryKeys
) -> None:
    customer = new_customer_with_contact()
    data = await save(codec, customer)
    history = stored(customer, data)
    customer.mark_saved()
    customer.erase_personal_data("dpo")
    await save(codec, customer)
    assert keys.keys == {}
    decoded = await codec.decode("c-9", history)
    assert decoded[1]["personal_data"] is None and decoded[1]["role"] == "decision_maker"
    replayed = Customer.replay(
        "c-9",
        [STORED_EVENTS.model_for(e.event_type, 1).model_validate(d) for e, d in zip(history, decoded, strict=True)],
    )
    assert replayed.contacts["k1"].erased


async def test_a_contact_added_after_erasure_gets_a_new_key_and_the_old_data_stays_erased(
    codec: PersonalDataCodec, keys: InMemoryKeys
) -> None:
    customer = new_customer_with_contact()
    first = stored(customer, await save(codec, customer))
    old_key = keys.keys["c-9"]
    customer.mark_saved()
    customer.erase_personal_data()
    await save(codec, customer)
    customer.mark_saved()
    customer.add_contact("k2", ContactRole.USER, PersonalData(name="Han Meimei"))
    [second] = stored(customer, await save(codec, customer))
    assert keys.keys["c-9"].key_id != old_key.key_id
    decoded = await codec.decode("c-9", [*first, second])
    assert decoded[1]["personal_data"] is None
    assert decoded[2]["personal_data"]["name"] == "Han Meimei"


async def test_the_event_view_shows_status_never_ciphertext_or_clear_text(
    codec: PersonalDataCodec, keys: InMemoryKeys
) -> None:
    customer = new_customer_with_contact()
    history = stored(customer, await save(codec, customer))
    [_, before] = await codec.redact("c-9", history)
    assert before.data["personal_data"] == {"status": "encrypted", "algorithm": "AES-256-GCM"}
    keys.keys.clear()
    [_, after] = await codec.redact("c-9", history)
    assert after.data["personal_data"] == {"status": "erased", "algorithm": "AES-256-GCM"}


def test_a_sealed_value_opens_only_for_its_own_customer_and_key() -> None:
    key = DataKey.generate()
    sealed = seal(key, b"secret", context="tierstream.customers/c-1")
    assert open_sealed(key, sealed, context="tierstream.customers/c-1") == b"secret"
    with pytest.raises(CorruptCiphertext):
        open_sealed(key, sealed, context="tierstream.customers/c-2")
    with pytest.raises(CorruptCiphertext):
        open_sealed(DataKey(key.key_id, DataKey.generate().secret), sealed, context="tierstream.customers/c-1")
    assert repr(key.secret) not in repr(key), "a key's repr (e.g. in a traceback) hides the secret"


def test_two_seals_of_the_same_value_differ() -> None:
    key = DataKey.generate()
    assert seal(key, b"x", context="c")["ciphertext"] != seal(key, b"x", context="c")["ciphertext"]


def test_the_public_contact_event_carries_a_reference_and_flags_only() -> None:
    customer = new_customer_with_contact()
    public = [to_public(customer, e) for e in customer.pending_events]
    assert isinstance(public[0], contract.CustomerRegistered)
    assert public[1] == contract.CustomerContactAdded(
        contact_id="k1",
        role="decision_maker",
        personal_data_ref="pii://customers/c-9/contacts/k1",
        has_phone=True,
        has_email=True,
    )
    envelope = Envelope.wrap(
        public[1], producer="customers", aggregate_type="customer", aggregate_id="c-9", aggregate_version=2,
        customer_id="c-9", correlation_id="x",
    )  # fmt: skip
    text = envelope.to_json().decode()
    assert PHONE not in text and EMAIL not in text and "Li Lei" not in text


def test_events_that_are_not_contract_payloads_are_never_published() -> None:
    customer = new_customer_with_contact()
    assert to_public(customer, PERSON) is None
