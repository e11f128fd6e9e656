"""HTTP API of the customers service."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated

from fastapi import APIRouter, FastAPI, status
from pydantic import BaseModel, Field

from customers.application.handlers import CustomerHandlers, RegisterCustomer
from customers.domain.customer import Customer, Profile
from shared.api import CorrelationId, Identifier, NotFound, StoredEventOut, create_app, database_check, kafka_check
from shared.events.vocabulary import Channel, NeedProfile, SalesStage, SizeBand
from shared.runtime import Container

Text = Annotated[str, Field(min_length=1, max_length=200)]


class RegisterCustomerIn(BaseModel):
    customer_id: Identifier | None = Field(default=None, description="caller-chosen id; generated when absent")
    company_name: Text
    region: Text
    industry: Text | None = None
    size_band: SizeBand | None = None
    country: Text | None = None
    channel: Channel | None = None
    need_profile: NeedProfile | None = None
    founded_on: date | None = Field(default=None, description="founding day (a care date)")
    stage: SalesStage = SalesStage.PROSPECT


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
    stage: str
    active: bool
    version: int

    @classmethod
    def of(cls, customer: Customer) -> CustomerOut:
        assert customer.profile is not None
        return cls(
            customer_id=customer.id,
            stage=customer.stage,
            active=customer.active,
            version=customer.version,
            **asdict(customer.profile),
        )


def build_api(container: Container) -> FastAPI:
    handlers: CustomerHandlers = container.parts["handlers"]
    router = APIRouter(prefix="/customers", tags=["customers"])

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=CustomerOut, summary="Register a customer")
    async def register_customer(body: RegisterCustomerIn, cid: CorrelationId) -> CustomerOut:
        profile = Profile(**body.model_dump(exclude={"customer_id", "stage"}))
        cmd = RegisterCustomer(profile=profile, customer_id=body.customer_id, stage=body.stage.value)
        return CustomerOut.of(await handlers.register_customer(cmd, cid))

    @router.get("/{customer_id}", response_model=CustomerOut, summary="Current state of a customer")
    async def get_customer(customer_id: str) -> CustomerOut:
        customer = await handlers.customers.get(customer_id)
        if customer is None:
            raise NotFound("customer", customer_id)
        return CustomerOut.of(customer)

    @router.get("/{customer_id}/events", response_model=list[StoredEventOut], summary="The customer's event stream")
    async def customer_events(customer_id: str) -> list[StoredEventOut]:
        history = await handlers.customers.history(customer_id)
        if not history:
            raise NotFound("customer", customer_id)
        return [StoredEventOut.from_stored(e) for e in history]

    return create_app(
        service="customers",
        title="Tierstream customers",
        description="The customer file of a wholesale business: companies, regions, stages.",
        routers=[router],
        ready_checks={
            "database": database_check(container.engine),
            "kafka": kafka_check(container.settings.kafka_bootstrap_servers),
        },
    )
