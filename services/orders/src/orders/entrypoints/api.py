"""HTTP API of the orders service (thin: validate, call a handler, shape the answer).

Commands on an existing order accept ``If-Match: "<version>"`` (409 on a mismatch); every answer about
one order carries its ``version``, which ``create_app`` repeats as ``ETag``. A refusal caused by one input field (unknown or
deactivated customer, overpayment, a return larger than what is left) is a 422 with a field error in
FastAPI's shape plus a top-level ``code``; a refusal caused by the order's state is a 409.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response, status

from orders.adapters.ledger import PostgresCreditLedger
from orders.application.commands import CancelOrder, PlaceOrder, ReceivePayment, ReleaseCredit, ReturnGoods
from orders.application.handlers import OrderHandlers
from orders.domain import credit as rules
from orders.domain.order import Order, OrderLine, ReturnedUnits
from orders.entrypoints.schemas import (
    CancelOrderIn,
    CreditReleaseIn,
    CustomerCreditOut,
    OrderOut,
    OrderPage,
    OrderSummaryOut,
    PaymentIn,
    PlaceOrderIn,
    ReturnGoodsIn,
    UnpaidOut,
)
from shared.api import (
    ExpectedVersion,
    Identifier,
    NotFound,
    Offset,
    StoredEventOut,
    correlation_id_of,
    create_app,
    database_check,
    kafka_check,
)
from shared.events.envelope import Money
from shared.runtime import Container


def answer(order: Order, response: Response) -> OrderOut:
    """The answer about one order, its version set as ``ETag`` here (the ETag middleware would otherwise
    hold the answer back and parse it to find it)."""
    response.headers["ETag"] = f'"{order.version}"'
    return OrderOut.of(order)


def build_api(container: Container) -> FastAPI:
    handlers: OrderHandlers = container.parts["handlers"]
    ledger: PostgresCreditLedger = container.parts["ledger"]
    policy: rules.CreditPolicy = container.settings.credit_policy()
    orders = APIRouter(prefix="/orders", tags=["orders"])
    customers = APIRouter(prefix="/customers", tags=["customers' orders and credit"])
    unprocessable: dict[int | str, dict[str, Any]] = {
        422: {"description": "invalid input, or refused because of one field (see `code`)"}
    }
    conflict: dict[int | str, dict[str, Any]] = {
        409: {"description": "version conflict (If-Match) or a rule about the order's state"}
    }

    @orders.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=OrderOut,
        summary="Place an order (held when the credit check fails)",
        responses={**unprocessable, 409: {"description": "an order with this id exists"}},
    )
    async def place_order(body: PlaceOrderIn, request: Request, response: Response) -> OrderOut:
        lines = [
            OrderLine(
                sku=line.sku,
                description=line.description,
                quantity=line.quantity,
                unit_price=Decimal(line.unit_price),
                category=line.category,
            )
            for line in body.lines
        ]
        cmd = PlaceOrder(body.customer_id, lines, body.currency, body.order_id, body.placed_at)
        return answer(await handlers.place_order(cmd, correlation_id_of(request)), response)

    @orders.get("/{order_id}", response_model=OrderOut, summary="Current state of an order")
    async def get_order(order_id: Identifier, response: Response) -> OrderOut:
        order = await handlers.orders.get(order_id)
        if order is None:
            raise NotFound("order", order_id)
        return answer(order, response)

    @orders.get("/{order_id}/events", response_model=list[StoredEventOut], summary="The order's event stream")
    async def order_events(order_id: Identifier) -> list[StoredEventOut]:
        history = await handlers.orders.history(order_id)
        if not history:
            raise NotFound("order", order_id)
        return [StoredEventOut.from_stored(e) for e in history]

    @orders.post(
        "/{order_id}/payments",
        response_model=OrderOut,
        summary="Record a payment (partial or full; overpayment refused)",
        responses={**unprocessable, **conflict},
    )
    async def receive_payment(
        order_id: Identifier, body: PaymentIn, expected: ExpectedVersion, request: Request, response: Response
    ) -> OrderOut:
        cmd = ReceivePayment(order_id, Decimal(body.amount), body.payment_id, body.currency, expected)
        return answer(await handlers.receive_payment(cmd, correlation_id_of(request)), response)

    @orders.post(
        "/{order_id}/credit-release",
        response_model=OrderOut,
        summary="Release an order from credit hold",
        responses=conflict,
    )
    async def release_credit(
        order_id: Identifier, body: CreditReleaseIn, expected: ExpectedVersion, request: Request, response: Response
    ) -> OrderOut:
        cmd = ReleaseCredit(order_id, body.released_by, body.note, expected)
        return answer(await handlers.release_credit(cmd, correlation_id_of(request)), response)

    @orders.post("/{order_id}/cancellation", response_model=OrderOut, summary="Cancel an order", responses=conflict)
    async def cancel_order(
        order_id: Identifier, body: CancelOrderIn, expected: ExpectedVersion, request: Request, response: Response
    ) -> OrderOut:
        cmd = CancelOrder(order_id, body.reason, expected)
        return answer(await handlers.cancel_order(cmd, correlation_id_of(request)), response)

    @orders.post(
        "/{order_id}/returns",
        response_model=OrderOut,
        summary="Return goods (part or all), by amount or by lines",
        responses={**unprocessable, **conflict},
    )
    async def return_goods(
        order_id: Identifier, body: ReturnGoodsIn, expected: ExpectedVersion, request: Request, response: Response
    ) -> OrderOut:
        units = [ReturnedUnits(line.sku, line.quantity) for line in body.lines] if body.lines else None
        amount = None if body.amount is None else Decimal(body.amount)
        cmd = ReturnGoods(order_id, amount, body.reason, body.return_id, expected, units)
        return answer(await handlers.return_goods(cmd, correlation_id_of(request)), response)

    @customers.get("/{customer_id}/orders", response_model=OrderPage, summary="A customer's orders, newest first")
    async def customer_orders(
        customer_id: Identifier,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Offset = 0,
    ) -> OrderPage:
        rows, total = await ledger.customer_orders(customer_id, limit=limit, offset=offset)
        return OrderPage(items=[OrderSummaryOut.of(r) for r in rows], total=total, limit=limit, offset=offset)

    @customers.get(
        "/{customer_id}/credit",
        response_model=CustomerCreditOut,
        summary="The customer's credit terms as orders knows them, and what it owes",
    )
    async def customer_credit(customer_id: Identifier) -> CustomerCreditOut:
        today: date = handlers.clock().date()
        found = await ledger.customer_credit(customer_id, today)
        if found is None:
            raise NotFound("customer", customer_id)
        customer = found["customer"]
        limit = rules.effective_limit(customer.terms, policy)
        return CustomerCreditOut(
            customer_id=customer.customer_id,
            registered=customer.registered,
            active=customer.active,
            credit_controlled=limit is not None,
            credit_limit=None if limit is None else Money(amount=limit[0], currency=limit[1]),
            payment_days=rules.payment_days_for(customer.terms, policy),
            rating=customer.terms.rating if customer.terms else None,
            unpaid=[
                UnpaidOut(
                    amount=Money(amount=u["amount"], currency=u["currency"]),
                    orders=u["orders"],
                    oldest_due_date=u["oldest_due"],
                    days_overdue=rules.days_overdue(u["oldest_due"], today),
                )
                for u in found["unpaid"]
            ],
        )

    settings = container.settings
    app = create_app(
        service="orders",
        title="Tierstream orders",
        description="Orders, payments, credit control, cancellations, returns and overdue receivables of "
        "wholesale customers.",
        routers=[orders, customers],
        settings=settings,
        ready_checks={
            "database": database_check(container.engine),
        },
        advisory_checks={"kafka": kafka_check(settings.kafka_bootstrap_servers)},
    )
    return app
