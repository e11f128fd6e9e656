"""The events a customer's stream stores, and their registry.

Most of them *are* the public contract payloads (they carry no personal data). The one that carries a
person — :class:`CustomerContactAdded` — is private: it holds the contact's name, phone, email and
birthday, which the service's codec encrypts with the customer's data key before storing and decrypts
on load. Its public counterpart (``shared.events.customers.CustomerContactAdded``) carries only a
reference; ``application/public_events.py`` maps one to the other.

A private model names its personal fields in ``personal_fields``; after erasure (the customer's key
is deleted) those fields load as ``None``.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.events import customers as contract
from shared.events.envelope import EventPayload
from shared.events.registry import EventRegistry
from shared.events.vocabulary import ContactRole, Identifier


class PersonalData(BaseModel):
    """What identifies a contact person: never stored in clear, never published."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, min_length=1, max_length=50)
    email: str | None = Field(default=None, min_length=3, max_length=254)
    birthday: date | None = None


class CustomerContactAdded(EventPayload):
    """Private: a contact person was added, with personal data (encrypted at rest)."""

    event_type: ClassVar[str] = "CustomerContactAdded"
    schema_version: ClassVar[int] = 1
    #: Fields the codec encrypts with the customer's data key.
    personal_fields: ClassVar[tuple[str, ...]] = ("personal_data",)

    contact_id: Identifier
    role: ContactRole
    has_phone: bool = False
    has_email: bool = False
    #: None once the customer's data key is deleted (erased).
    personal_data: PersonalData | None = None


#: (event_type, schema_version) → model, for the events a customer stream stores.
STORED_EVENTS = EventRegistry()
for _model in (
    contract.CustomerRegistered,
    contract.CustomerProfileUpdated,
    CustomerContactAdded,
    contract.CustomerContactRemoved,
    contract.CustomerStageAdvanced,
    contract.CustomerCreditTermsSet,
    contract.CustomerDeactivated,
    contract.CustomerReactivated,
    contract.CustomerPersonalDataErased,
):
    STORED_EVENTS.register(_model)
