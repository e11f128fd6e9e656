"""Request and response bodies of the customers HTTP API (validated here, 422 with field errors)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from customers.adapters.directory import DirectoryEntry, DirectoryPage
from customers.domain.customer import Contact, Customer
from shared.api import Identifier, NotBlank, RequestBody
from shared.events.envelope import Money
from shared.events.vocabulary import (
    ActorId,
    Channel,
    ContactRole,
    CreditRating,
    NeedProfile,
    NonNegativeMoney,
    ProfileField,
    Reason,
    SalesStage,
    SizeBand,
)

Text = Annotated[str, Field(min_length=1, max_length=200), NotBlank]
ReasonText = Annotated[Reason, NotBlank]
Operator = Annotated[ActorId, NotBlank]
#: The latest calendar date anywhere on Earth (UTC+14) is "today" for some caller.
_EARLIEST_TIME_ZONE = timedelta(hours=14)


def _not_in_the_future(day: date) -> date:
    today = (datetime.now(UTC) + _EARLIEST_TIME_ZONE).date()
    if day > today:
        raise PydanticCustomError(
            "date_in_the_future", "Date should not be in the future (today is {today})", {"today": today.isoformat()}
        )
    return day


#: A day that has happened (a founding day, a birthday): today at the latest.
PastDay = Annotated[date, AfterValidator(_not_in_the_future)]
Phone = Annotated[
    str, Field(min_length=3, max_length=50, pattern=r"^\+?[0-9][0-9 ()./-]*[0-9]$", examples=["+86-138-0000-1234"])
]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", examples=["buyer@example.com"])]


class RegisterCustomerIn(RequestBody):
    customer_id: Identifier | None = Field(default=None, description="caller-chosen id; generated when absent")
    company_name: Text
    region: Text
    industry: Text | None = None
    size_band: SizeBand | None = None
    country: Text | None = None
    channel: Channel | None = None
    need_profile: NeedProfile | None = None
    founded_on: PastDay | None = Field(default=None, description="founding day (a care date), not in the future")
    stage: SalesStage = SalesStage.PROSPECT


class ProfilePatchIn(RequestBody):
    """Only the fields present change; ``null`` clears a field (not company_name or region)."""

    company_name: Text | None = None
    region: Text | None = None
    industry: Text | None = None
    size_band: SizeBand | None = None
    country: Text | None = None
    channel: Channel | None = None
    need_profile: NeedProfile | None = None
    founded_on: PastDay | None = None

    @field_validator("company_name", "region")  # runs only on fields present: each cleared one is named
    @classmethod
    def _required_fields_are_not_cleared(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            raise PydanticCustomError(
                "not_clearable", "{field} can be changed but not cleared", {"field": info.field_name}
            )
        return value

    def changes(self) -> dict[ProfileField, Any]:
        return {ProfileField(name): getattr(self, name) for name in self.model_fields_set}


class AddContactIn(RequestBody):
    """A contact person. Name, phone, email and birthday are personal data: stored encrypted, never published."""

    contact_id: Identifier | None = Field(default=None, description="caller-chosen id; generated when absent")
    role: ContactRole
    name: Text
    phone: Phone | None = None
    email: Email | None = None
    birthday: PastDay | None = Field(default=None, description="a care date, not in the future")


class AdvanceStageIn(RequestBody):
    stage: SalesStage = Field(description="the new stage; must be later than the current one")


class CreditTermsIn(RequestBody):
    credit_limit: NonNegativeMoney = Field(description="maximum unpaid exposure; 0 = cash only")
    payment_days: int = Field(strict=True, ge=0, le=365, description="a JSON integer, 0 to 365")
    rating: CreditRating


class ReasonIn(RequestBody):
    reason: ReasonText


class ErasureIn(RequestBody):
    requested_by: Operator | None = Field(default=None, description="operator or process asking (no names)")
    reason: ReasonText | None = Field(default=None, description="legal basis or ticket reference")


class ContactOut(BaseModel):
    contact_id: str
    role: ContactRole
    has_phone: bool
    has_email: bool
    erased: bool = Field(description="the personal data was erased (its key deleted); role and id stay")
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    birthday: date | None = None

    @classmethod
    def of(cls, contact: Contact, *, with_personal_data: bool) -> ContactOut:
        shown = contact.personal_data if with_personal_data else None
        return cls(
            contact_id=contact.contact_id,
            role=contact.role,
            has_phone=contact.has_phone,
            has_email=contact.has_email,
            erased=contact.erased,
            **(shown.model_dump() if shown is not None else {}),
        )


class CreditTermsOut(BaseModel):
    credit_limit: Money
    payment_days: int
    rating: CreditRating


class CustomerOut(BaseModel):
    customer_id: str
    company_name: str
    region: str
    industry: str | None
    size_band: str | None
    country: str | None
    channel: str | None
    need_profile: str | None
    founded_on: date | None
    stage: SalesStage
    active: bool
    deactivation_reason: str | None
    credit_terms: CreditTermsOut | None
    contacts: list[ContactOut]
    personal_data: Literal["shown", "withheld"] = Field(
        description="GET shows contacts' personal data; command responses withhold it (they may be kept "
        "for Idempotency-Key replays, which must not outlive an erasure)"
    )
    version: int

    @classmethod
    def of(cls, customer: Customer, *, with_personal_data: bool = False) -> CustomerOut:
        assert customer.profile is not None
        terms = customer.credit_terms
        return cls(
            customer_id=customer.id,
            **vars(customer.profile),
            stage=customer.stage,
            active=customer.active,
            deactivation_reason=customer.deactivation_reason,
            credit_terms=None if terms is None else CreditTermsOut(**vars(terms)),
            contacts=[ContactOut.of(c, with_personal_data=with_personal_data) for c in customer.contacts.values()],
            personal_data="shown" if with_personal_data else "withheld",
            version=customer.version,
        )


class CustomerSummaryOut(BaseModel):
    customer_id: str
    company_name: str
    region: str
    country: str | None
    industry: str | None
    size_band: str | None
    channel: str | None
    need_profile: str | None
    stage: str
    active: bool
    credit_rating: str | None
    contacts: int
    version: int
    registered_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, entry: DirectoryEntry) -> CustomerSummaryOut:
        return cls(**vars(entry))


class CustomerPageOut(BaseModel):
    items: list[CustomerSummaryOut]
    total: int = Field(description="customers matching the filters, over all pages")
    limit: int
    offset: int

    @classmethod
    def of(cls, page: DirectoryPage, *, limit: int, offset: int) -> CustomerPageOut:
        return cls(items=[CustomerSummaryOut.of(e) for e in page.entries], total=page.total, limit=limit, offset=offset)
