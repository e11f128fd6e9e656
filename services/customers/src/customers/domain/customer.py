"""The Customer aggregate: the customer file (客户档案).

The walking skeleton registers customers; the full file (contacts with encrypted personal data, stage,
credit terms, care dates, erasure) grows here. Registration carries no personal data, so its stored
event is the contract payload itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel

from shared.events import customers as contract
from shared.events.registry import REGISTRY
from shared.eventsourcing.aggregate import Aggregate, DomainError


@dataclass(frozen=True)
class Profile:
    company_name: str
    region: str
    industry: str | None = None
    size_band: str | None = None
    country: str | None = None
    channel: str | None = None
    need_profile: str | None = None
    founded_on: date | None = None


class Customer(Aggregate):
    aggregate_type = "customer"
    event_registry = REGISTRY

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.profile: Profile | None = None
        self.stage = "prospect"
        self.active = True

    @property
    def customer_id(self) -> str:
        return self.id

    @classmethod
    def register(cls, customer_id: str, profile: Profile, stage: str = "prospect") -> Customer:
        if not profile.company_name.strip():
            raise DomainError("a customer needs a company name")
        customer = cls(customer_id)
        customer._record(
            contract.CustomerRegistered(
                customer_id=customer_id,
                company_name=profile.company_name,
                industry=profile.industry,
                size_band=profile.size_band,
                region=profile.region,
                country=profile.country,
                channel=profile.channel,
                need_profile=profile.need_profile,
                stage=stage,
                founded_on=profile.founded_on,
            )
        )
        return customer

    def _apply(self, event: BaseModel) -> None:
        match event:
            case contract.CustomerRegistered():
                self.profile = Profile(
                    company_name=event.company_name,
                    region=event.region,
                    industry=event.industry,
                    size_band=event.size_band,
                    country=event.country,
                    channel=event.channel,
                    need_profile=event.need_profile,
                    founded_on=event.founded_on,
                )
                self.stage = event.stage
            case _:
                pass
