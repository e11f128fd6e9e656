"""Closed vocabularies and constrained field types shared by the payload modules (DESIGN §3–§4).

A vocabulary is a :class:`~enum.StrEnum`, so it travels as its plain value ("vip", "high") and
compares equal to that string. Adding a member is a contract change (consumers may match
exhaustively): do it additively and document it in docs/events.md. Open-ended codes (RFM segment
names, churn reason codes) are plain constrained strings instead, because their set is owned by a
versioned policy, not by the contract.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

# Instant is defined with the envelope (its occurred_at is one) and belongs with these field types.
from shared.events.envelope import Instant as Instant
from shared.events.envelope import Money
from shared.events.personal_data import refuse_personal_data

# -- constrained scalars ------------------------------------------------------------------------

#: Identifier of a customer, order, complaint, survey, contact, payment, return or alert.
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]

#: Who did something: an operator or service account id — never a person's name, nor an e-mail address or
#: phone number (refused like :data:`Reason`: events are kept forever).
ActorId = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(refuse_personal_data)]

#: A short human-readable reason or note. Text that looks like an e-mail address or a phone number is
#: refused: events are kept forever and cannot be erased (see :mod:`shared.events.personal_data`).
Reason = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(refuse_personal_data)]

#: Longer free text (resolutions, survey comments), refused like :data:`Reason` when it looks personal.
LongText = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(refuse_personal_data)]

#: What a product is (an order line's description): refused like :data:`Reason` when it looks personal
#: ("deliver to bob@example.org" belongs on the customer's contact). Empty when not given.
ProductText = Annotated[str, Field(max_length=300), AfterValidator(refuse_personal_data)]

#: A lower_snake_case machine code (reason codes, segment keys).
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]


def _non_negative(value: Money) -> Money:
    if value.amount < 0:
        raise ValueError("amount must not be negative")
    return value


def _positive(value: Money) -> Money:
    if value.amount <= 0:
        raise ValueError("amount must be positive")
    return value


#: Money whose amount is ≥ 0.
NonNegativeMoney = Annotated[Money, AfterValidator(_non_negative)]

#: Money whose amount is > 0.
PositiveMoney = Annotated[Money, AfterValidator(_positive)]

# -- customers ----------------------------------------------------------------------------------


class SalesStage(StrEnum):
    """Sales stage of the customer file; advances forward only."""

    PROSPECT = "prospect"
    LEAD = "lead"
    CUSTOMER = "customer"

    @property
    def rank(self) -> int:
        return list(SalesStage).index(self)


class SizeBand(StrEnum):
    """Company size band, by headcount and turnover as the sales team records it."""

    MICRO = "micro"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"
    ENTERPRISE = "enterprise"


class Channel(StrEnum):
    """How the customer buys from us."""

    DIRECT = "direct"
    DISTRIBUTOR = "distributor"
    ONLINE = "online"
    AGENT = "agent"
    OTHER = "other"


class NeedProfile(StrEnum):
    """What the customer mostly cares about (drives service and offer strategy)."""

    PRICE_SENSITIVE = "price_sensitive"
    QUALITY = "quality"
    SERVICE = "service"
    TECHNICAL = "technical"


class ContactRole(StrEnum):
    """A contact's role in the customer's buying decisions."""

    DECISION_MAKER = "decision_maker"
    PURCHASING = "purchasing"
    USER = "user"


class CreditRating(StrEnum):
    """Credit rating, A best to D worst."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


class ProfileField(StrEnum):
    """Profile fields that CustomerProfileUpdated can change."""

    COMPANY_NAME = "company_name"
    INDUSTRY = "industry"
    SIZE_BAND = "size_band"
    REGION = "region"
    COUNTRY = "country"
    CHANNEL = "channel"
    NEED_PROFILE = "need_profile"
    FOUNDED_ON = "founded_on"


# -- orders -------------------------------------------------------------------------------------


class OrderStatus(StrEnum):
    """Status of an order as placed: accepted, or held by the credit check until released."""

    PLACED = "placed"
    CREDIT_HELD = "credit_held"


class CreditHoldReason(StrEnum):
    """Why the credit check held an order: over the available credit, or receivables 60+ days overdue."""

    OVER_CREDIT_LIMIT = "over_credit_limit"
    RECEIVABLES_OVERDUE_60 = "receivables_overdue_60"


class OverdueBucket(StrEnum):
    """Age bucket of an overdue receivable, in days past the due date."""

    DAYS_1_30 = "1-30"
    DAYS_31_60 = "31-60"
    DAYS_61_90 = "61-90"
    DAYS_90_PLUS = "90+"

    @classmethod
    def for_days(cls, days_overdue: int) -> OverdueBucket:
        """The bucket of ``days_overdue`` (≥ 1)."""
        if days_overdue < 1:
            raise ValueError("a receivable is overdue from day 1")
        if days_overdue <= 30:
            return cls.DAYS_1_30
        if days_overdue <= 60:
            return cls.DAYS_31_60
        if days_overdue <= 90:
            return cls.DAYS_61_90
        return cls.DAYS_90_PLUS


# -- feedback -----------------------------------------------------------------------------------


class ComplaintCategory(StrEnum):
    """What a complaint is about."""

    PRODUCT_QUALITY = "product_quality"
    PRICE = "price"
    SERVICE_ATTITUDE = "service_attitude"
    DELIVERY = "delivery"
    OTHER = "other"


class Severity(StrEnum):
    """How serious a complaint is; sets its SLA (acknowledge within hours, resolve within days)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class SlaBreach(StrEnum):
    """Which complaint deadline was missed."""

    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


# -- segmentation -------------------------------------------------------------------------------


class ValueTier(StrEnum):
    """Value tier (客户分级); ``prospect`` = no orders yet, untiered."""

    VIP = "vip"
    KEY = "key"
    NORMAL = "normal"
    SMALL = "small"
    PROSPECT = "prospect"


class ActivityStatus(StrEnum):
    """Buying activity: active → at_risk → dormant → lost, and reactivated on a new order."""

    ACTIVE = "active"
    AT_RISK = "at_risk"
    DORMANT = "dormant"
    LOST = "lost"
    REACTIVATED = "reactivated"


class RiskBand(StrEnum):
    """Band of a churn-risk score; an alert is raised in the high band."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
