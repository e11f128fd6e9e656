"""Commands on the customer file: what a caller asks for, in the imperative.

Every command but :class:`RegisterCustomer` targets an existing customer and may carry the version the
caller last saw (``expected_version``, from ``If-Match``); a different stored version is a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from shared.events.envelope import Money
from shared.events.vocabulary import ContactRole, CreditRating, ProfileField, SalesStage


@dataclass(frozen=True)
class Profile:
    """The company profile: who the customer is (no personal data)."""

    company_name: str
    region: str
    industry: str | None = None
    size_band: str | None = None
    country: str | None = None
    channel: str | None = None
    need_profile: str | None = None
    founded_on: date | None = None


@dataclass(frozen=True)
class RegisterCustomer:
    profile: Profile
    customer_id: str | None = None
    stage: SalesStage = SalesStage.PROSPECT


@dataclass(frozen=True)
class CustomerCommand:
    """Base of the commands on an existing customer."""

    customer_id: str
    expected_version: int | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class UpdateProfile(CustomerCommand):
    #: field → new value (None clears it); fields not named stay as they are
    changes: dict[ProfileField, Any]


@dataclass(frozen=True)
class AddContact(CustomerCommand):
    contact_id: str
    role: ContactRole
    name: str
    phone: str | None = None
    email: str | None = None
    birthday: date | None = None


@dataclass(frozen=True)
class RemoveContact(CustomerCommand):
    contact_id: str
    reason: str | None = None


@dataclass(frozen=True)
class AdvanceStage(CustomerCommand):
    stage: SalesStage


@dataclass(frozen=True)
class SetCreditTerms(CustomerCommand):
    credit_limit: Money
    payment_days: int
    rating: CreditRating


@dataclass(frozen=True)
class DeactivateCustomer(CustomerCommand):
    reason: str


@dataclass(frozen=True)
class ReactivateCustomer(CustomerCommand):
    reason: str


@dataclass(frozen=True)
class ErasePersonalData(CustomerCommand):
    requested_by: str | None = None
    reason: str | None = None
