"""Contract events of the customer file (客户档案), published by ``customers`` on ``crm.customers.v1``.

No personal data is ever carried here: contacts travel by reference (``personal_data_ref``), and the
people behind them live only in the customers service, encrypted per customer so that erasure is a
key deletion (DESIGN §4). Only the event that starts a customer's stream repeats ``customer_id`` in its
payload; every other event relies on the envelope's ``customer_id`` (the Kafka key).
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Self

from pydantic import Field, model_validator

from shared.events import topics
from shared.events.envelope import EventPayload
from shared.events.registry import event
from shared.events.vocabulary import (
    ActorId,
    Channel,
    ContactRole,
    CreditRating,
    Identifier,
    NeedProfile,
    NonNegativeMoney,
    ProfileField,
    Reason,
    SalesStage,
    SizeBand,
)

TOPIC = topics.CUSTOMERS
PRODUCER = "customers"


@event
class CustomerRegistered(EventPayload):
    """A business customer entered the customer file, with its company profile and first sales stage."""

    event_type: ClassVar[str] = "CustomerRegistered"
    schema_version: ClassVar[int] = 1

    customer_id: Identifier = Field(description="id of the new customer (equals the envelope's customer_id)")
    company_name: str = Field(min_length=1, max_length=200, description="registered company name")
    industry: str | None = Field(default=None, min_length=1, max_length=200, description="industry, free text")
    size_band: SizeBand | None = Field(default=None, description="company size band")
    region: str = Field(min_length=1, max_length=200, description="sales region")
    country: str | None = Field(default=None, min_length=1, max_length=200, description="country")
    channel: Channel | None = Field(default=None, description="how the customer buys")
    need_profile: NeedProfile | None = Field(default=None, description="what the customer mostly cares about")
    stage: SalesStage = Field(default=SalesStage.PROSPECT, description="sales stage at registration")
    founded_on: date | None = Field(default=None, description="company founding day, a care date")


@event
class CustomerProfileUpdated(EventPayload):
    """Some profile fields changed. Only the changed fields are present, and ``changed_fields`` lists them.

    A field named in ``changed_fields`` whose value is null was cleared; a field not named is unchanged.
    ``company_name`` and ``region`` can be changed but never cleared.
    """

    event_type: ClassVar[str] = "CustomerProfileUpdated"
    schema_version: ClassVar[int] = 1

    changed_fields: list[ProfileField] = Field(min_length=1, description="the profile fields this event changes")
    company_name: str | None = Field(default=None, min_length=1, max_length=200, description="new company name")
    industry: str | None = Field(default=None, min_length=1, max_length=200, description="new industry")
    size_band: SizeBand | None = Field(default=None, description="new size band")
    region: str | None = Field(default=None, min_length=1, max_length=200, description="new sales region")
    country: str | None = Field(default=None, min_length=1, max_length=200, description="new country")
    channel: Channel | None = Field(default=None, description="new channel")
    need_profile: NeedProfile | None = Field(default=None, description="new need profile")
    founded_on: date | None = Field(default=None, description="new founding day")

    @model_validator(mode="after")
    def _changed_fields_match_values(self) -> Self:
        named = set(self.changed_fields)
        if len(named) != len(self.changed_fields):
            raise ValueError("changed_fields must not repeat a field")
        unnamed = sorted(f.value for f in ProfileField if getattr(self, f.value) is not None and f not in named)
        if unnamed:
            raise ValueError(f"fields with a value must be listed in changed_fields: {unnamed}")
        cleared = sorted(
            f.value
            for f in (ProfileField.COMPANY_NAME, ProfileField.REGION)
            if f in named and getattr(self, f.value) is None
        )
        if cleared:
            raise ValueError(f"required profile fields cannot be cleared: {cleared}")
        return self


@event
class CustomerContactAdded(EventPayload):
    """A contact person was added. The person is carried by reference only — never a name, phone or email."""

    event_type: ClassVar[str] = "CustomerContactAdded"
    schema_version: ClassVar[int] = 1

    contact_id: Identifier = Field(description="id of the contact within the customer")
    role: ContactRole = Field(description="the contact's role in buying decisions")
    personal_data_ref: str = Field(
        min_length=7,
        max_length=300,
        pattern=r"^pii://[A-Za-z0-9_.:/-]+$",
        description='opaque reference to the personal data held by the customers service, e.g. "pii://customers/<customer_id>/contacts/<contact_id>"',
    )
    has_phone: bool = Field(default=False, description="a phone number is on file")
    has_email: bool = Field(default=False, description="an email address is on file")


@event
class CustomerContactRemoved(EventPayload):
    """A contact person was removed from the customer file."""

    event_type: ClassVar[str] = "CustomerContactRemoved"
    schema_version: ClassVar[int] = 1

    contact_id: Identifier = Field(description="id of the removed contact")
    reason: Reason | None = Field(default=None, description="why it was removed")


@event
class CustomerStageAdvanced(EventPayload):
    """The sales stage moved forward (prospect → lead → customer); it never moves back."""

    event_type: ClassVar[str] = "CustomerStageAdvanced"
    schema_version: ClassVar[int] = 1

    previous_stage: SalesStage = Field(description="stage before")
    new_stage: SalesStage = Field(description="stage after; later than previous_stage")

    @model_validator(mode="after")
    def _forward_only(self) -> Self:
        if self.new_stage.rank <= self.previous_stage.rank:
            raise ValueError(f"stage can only advance, not {self.previous_stage} → {self.new_stage}")
        return self


@event
class CustomerCreditTermsSet(EventPayload):
    """Credit terms were set or changed: the limit for unpaid orders, payment days and credit rating."""

    event_type: ClassVar[str] = "CustomerCreditTermsSet"
    schema_version: ClassVar[int] = 1

    credit_limit: NonNegativeMoney = Field(description="maximum unpaid exposure (≥ 0); 0 = cash only")
    payment_days: int = Field(ge=0, le=365, description="days from placing an order to its payment due date")
    rating: CreditRating = Field(description="credit rating, A best to D worst")


@event
class CustomerDeactivated(EventPayload):
    """The customer was deactivated (e.g. closed down or blocked); its history and figures stay."""

    event_type: ClassVar[str] = "CustomerDeactivated"
    schema_version: ClassVar[int] = 1

    reason: Reason = Field(description="why")


@event
class CustomerReactivated(EventPayload):
    """A deactivated customer was reactivated."""

    event_type: ClassVar[str] = "CustomerReactivated"
    schema_version: ClassVar[int] = 1

    reason: Reason = Field(description="why")


@event
class CustomerPersonalDataErased(EventPayload):
    """The customer's personal data was erased on request (GDPR / PIPL) by deleting its encryption key.

    Consumers that keep anything derived from the listed contacts must drop it; aggregates and tiers stay.
    """

    event_type: ClassVar[str] = "CustomerPersonalDataErased"
    schema_version: ClassVar[int] = 1

    erased_contact_ids: list[Identifier] = Field(description="contacts whose personal data is now unreadable")
    requested_by: ActorId | None = Field(default=None, description="operator or process that requested it")
    reason: Reason | None = Field(default=None, description="legal basis or ticket reference")
