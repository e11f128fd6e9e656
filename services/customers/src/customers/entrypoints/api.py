"""HTTP API of the customers service (thin: validate, build a command, call a handler, shape the answer).

Commands on an existing customer accept ``If-Match: "<version>"`` (409 when the customer moved on) and
answer with the customer's state (``create_app`` adds its ``version`` as ``ETag``). Command answers
withhold contacts' personal data — they may be stored for ``Idempotency-Key`` replays, which must not
outlive an erasure; ``GET /customers/{id}`` shows it (or marks it erased). Bodies are never logged.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, status

from customers.application.handlers import CustomerHandlers
from customers.domain import commands as cmd
from customers.domain.commands import Profile
from customers.domain.customer import Customer
from customers.entrypoints.schemas import (
    AddContactIn,
    AdvanceStageIn,
    CreditTermsIn,
    CustomerOut,
    CustomerPageOut,
    ErasureIn,
    ProfilePatchIn,
    ReasonIn,
    RegisterCustomerIn,
)
from shared.api import (
    CorrelationId,
    ExpectedVersion,
    Identifier,
    NotBlank,
    Offset,
    StoredEventOut,
    create_app,
    database_check,
    kafka_check,
)
from shared.events.vocabulary import Reason, SalesStage
from shared.runtime import Container

OpenApiResponses = dict[int | str, dict[str, Any]]
CONFLICT: OpenApiResponses = {409: {"description": "a rule refused the command, or If-Match named an older version"}}
MISSING: OpenApiResponses = {404: {"description": "no such customer (or contact)"}}


def _answer(customer: Customer, *, with_personal_data: bool = False) -> CustomerOut:
    return CustomerOut.of(customer, with_personal_data=with_personal_data)


def build_router(handlers: CustomerHandlers) -> APIRouter:
    router = APIRouter(prefix="/customers", tags=["customers"])

    async def run(command: cmd.CustomerCommand, cid: str) -> CustomerOut:
        return _answer(await handlers.handle(command, cid))

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=CustomerOut, responses=CONFLICT)
    async def register_customer(body: RegisterCustomerIn, cid: CorrelationId) -> CustomerOut:
        """Register a customer (409 if the id is taken)."""
        profile = Profile(**body.model_dump(exclude={"customer_id", "stage"}))
        command = cmd.RegisterCustomer(profile=profile, customer_id=body.customer_id, stage=body.stage)
        return _answer(await handlers.register_customer(command, cid))

    @router.get("", response_model=CustomerPageOut, summary="List customers (filtered, paginated)")
    async def list_customers(
        region: Annotated[str | None, Query(max_length=200)] = None,
        stage: SalesStage | None = None,
        active: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Offset = 0,
    ) -> CustomerPageOut:
        page = await handlers.search(
            region=region, stage=stage.value if stage else None, active=active, limit=limit, offset=offset
        )
        return CustomerPageOut.of(page, limit=limit, offset=offset)

    @router.get("/{customer_id}", response_model=CustomerOut, responses=MISSING)
    async def get_customer(customer_id: Identifier) -> CustomerOut:
        """Current state, with contacts' personal data decrypted — or null with ``erased: true``."""
        return _answer(await handlers.customer(customer_id), with_personal_data=True)

    @router.get("/{customer_id}/events", response_model=list[StoredEventOut], responses=MISSING)
    async def customer_events(customer_id: Identifier) -> list[StoredEventOut]:
        """The stored stream; personal data appears only as ``{"status": "encrypted" | "erased"}``."""
        return [StoredEventOut.from_stored(e) for e in await handlers.events(customer_id)]

    @router.patch("/{customer_id}/profile", response_model=CustomerOut, responses={**MISSING, **CONFLICT})
    async def update_profile(
        customer_id: Identifier, body: ProfilePatchIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> CustomerOut:
        """Change profile fields (only those present; unchanged values record nothing)."""
        return await run(cmd.UpdateProfile(customer_id, body.changes(), expected_version=expected), cid)

    @router.post(
        "/{customer_id}/contacts",
        status_code=status.HTTP_201_CREATED,
        response_model=CustomerOut,
        responses={**MISSING, **CONFLICT},
    )
    async def add_contact(
        customer_id: Identifier, body: AddContactIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> CustomerOut:
        """Add a contact person; the answer withholds the personal data just stored."""
        command = cmd.AddContact(
            customer_id,
            contact_id=body.contact_id or uuid.uuid4().hex,
            role=body.role,
            name=body.name,
            phone=body.phone,
            email=body.email,
            birthday=body.birthday,
            expected_version=expected,
        )
        return await run(command, cid)

    @router.delete(
        "/{customer_id}/contacts/{contact_id}", response_model=CustomerOut, responses={**MISSING, **CONFLICT}
    )
    async def remove_contact(
        customer_id: Identifier,
        contact_id: Identifier,
        cid: CorrelationId,
        expected: ExpectedVersion,
        reason: Annotated[Reason | None, Query(), NotBlank] = None,
    ) -> CustomerOut:
        """Remove a contact (its personal data stays encrypted in the stream until erasure)."""
        command = cmd.RemoveContact(customer_id, contact_id, reason, expected_version=expected)
        return await run(command, cid)

    @router.post("/{customer_id}/stage", response_model=CustomerOut, responses={**MISSING, **CONFLICT})
    async def advance_stage(
        customer_id: Identifier, body: AdvanceStageIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> CustomerOut:
        """Advance the sales stage (prospect → lead → customer); backwards or sideways is 409."""
        return await run(cmd.AdvanceStage(customer_id, body.stage, expected_version=expected), cid)

    @router.put("/{customer_id}/credit-terms", response_model=CustomerOut, responses={**MISSING, **CONFLICT})
    async def set_credit_terms(
        customer_id: Identifier, body: CreditTermsIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> CustomerOut:
        """Set the credit limit, payment days and rating (the same terms again record nothing)."""
        command = cmd.SetCreditTerms(
            customer_id, body.credit_limit, body.payment_days, body.rating, expected_version=expected
        )
        return await run(command, cid)

    @router.post("/{customer_id}/deactivation", response_model=CustomerOut, responses={**MISSING, **CONFLICT})
    async def deactivate_customer(
        customer_id: Identifier, body: ReasonIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> CustomerOut:
        """Deactivate an active customer (409 if already deactivated)."""
        return await run(cmd.DeactivateCustomer(customer_id, body.reason, expected_version=expected), cid)

    @router.post("/{customer_id}/reactivation", response_model=CustomerOut, responses={**MISSING, **CONFLICT})
    async def reactivate_customer(
        customer_id: Identifier, body: ReasonIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> CustomerOut:
        """Reactivate a deactivated customer (409 if active)."""
        return await run(cmd.ReactivateCustomer(customer_id, body.reason, expected_version=expected), cid)

    @router.post("/{customer_id}/erasure", response_model=CustomerOut, responses={**MISSING, **CONFLICT})
    async def erase_personal_data(
        customer_id: Identifier, body: ErasureIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> CustomerOut:
        """Erase every contact's personal data by deleting the customer's key (409 if it holds none)."""
        command = cmd.ErasePersonalData(customer_id, body.requested_by, body.reason, expected_version=expected)
        return await run(command, cid)

    return router


def build_api(container: Container) -> FastAPI:
    handlers: CustomerHandlers = container.parts["handlers"]
    return create_app(
        service="customers",
        title="Tierstream customers",
        description="The customer file (客户档案) of a wholesale business: company profile, contacts "
        "(personal data encrypted per customer, erasable), sales stage, credit terms, activation.",
        routers=[build_router(handlers)],
        settings=container.settings,
        ready_checks={
            "database": database_check(container.engine),
        },
        advisory_checks={"kafka": kafka_check(container.settings.kafka_bootstrap_servers)},
    )
