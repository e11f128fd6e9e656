"""Load a :class:`LoadPlan` through the public HTTP APIs, concurrently, with a progress bar.

Customers first; then each order followed by its returns and its (assumed) payment, many orders at once;
then the (assumed) feedback: each complaint filed together with the steps of its loop it has taken (one
request, one append, so nobody downstream sees it half-way), and the survey answers. Re-running is safe:
a 409 for something that already exists counts as "already loaded", and a complaint filed before resumes
after the last step it had reached, step by step.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tierstream.assumed_feedback import ComplaintCmd, ComplaintStep, FeedbackPlan, Step, SurveyCmd, status_after
from tierstream.dataset import CURRENCY, CustomerCmd, LoadPlan, OrderCmd, PaymentCmd, ReturnCmd

T = TypeVar("T")

#: How long an order refused as ``unknown_customer`` is retried (the customer is usually known within 1 s).
UNKNOWN_CUSTOMER_PATIENCE_S = 30.0


@dataclass
class LoadReport:
    created: Counter[str] = field(default_factory=Counter)
    already: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


async def load(
    plan: LoadPlan,
    urls: dict[str, str],
    *,
    concurrency: int = 16,
    progress: Progress | None = None,
    headers: dict[str, str] | None = None,
    payments: Sequence[PaymentCmd] = (),
    feedback: FeedbackPlan | None = None,
) -> LoadReport:
    """``headers`` go with every request (the bearer token: ``tierstream.stack.auth_headers()``).

    ``feedback`` is sent after every order, so segmentation grades it against the whole order history
    (no churn alert raised on a half-loaded history and cleared again)."""
    report = LoadReport()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits, headers=headers) as client:

        def customer(cmd: CustomerCmd) -> Awaitable[httpx.Response]:
            body = {
                "customer_id": cmd.customer_id,
                "company_name": cmd.company_name,
                "region": cmd.region,
                "country": cmd.country,
                "stage": "customer",
            }
            return client.post(f"{urls['customers']}/customers", json=body)

        def order(cmd: OrderCmd) -> Awaitable[httpx.Response]:
            body = {
                "order_id": cmd.order_id,
                "customer_id": cmd.customer_id,
                "currency": CURRENCY,
                "placed_at": cmd.placed_at.isoformat(),
                "lines": cmd.lines,
            }
            return client.post(f"{urls['orders']}/orders", json=body)

        def ret(cmd: ReturnCmd) -> Awaitable[httpx.Response]:
            body = {"amount": format(cmd.amount, "f"), "reason": cmd.reason, "return_id": cmd.return_id}
            return client.post(f"{urls['orders']}/orders/{cmd.order_id}/returns", json=body)

        def pay(cmd: PaymentCmd) -> Awaitable[httpx.Response]:
            body = {"amount": format(cmd.amount, "f"), "payment_id": cmd.payment_id}
            return client.post(f"{urls['orders']}/orders/{cmd.order_id}/payments", json=body)

        async def order_with_followers(bundle: _OrderBundle) -> None:
            if not await _send_with_retry("orders", bundle.order, order, report):
                # its returns and payment cannot be recorded either (the order's failure says why)
                report.failed["returns"] += len(bundle.returns)
                report.failed["payments"] += bundle.payment is not None
                return
            for cmd in bundle.returns:
                await _send_with_retry("returns", cmd, ret, report)
            if bundle.payment is not None:
                await _send_with_retry("payments", bundle.payment, pay, report)

        await _phase(
            "customers",
            plan.customers,
            lambda cmd: _send_with_retry("customers", cmd, customer, report),
            concurrency,
            progress,
        )
        await _phase("orders", _bundles(plan, payments), order_with_followers, concurrency, progress)
        if feedback is not None:
            await load_feedback(client, urls["feedback"], feedback, report, concurrency=concurrency, progress=progress)
    return report


async def load_feedback(
    client: httpx.AsyncClient,
    url: str,
    feedback: FeedbackPlan,
    report: LoadReport,
    *,
    concurrency: int = 16,
    progress: Progress | None = None,
) -> None:
    """The feedback phase of :func:`load` on a client of its own (the feedback API at ``url``)."""
    send = _FeedbackSender(client, url, report)
    await _phase("feedback", _feedback_items(feedback), send.item, concurrency, progress)


def _feedback_items(feedback: FeedbackPlan) -> list[ComplaintCmd | SurveyCmd]:
    """Complaints and surveys in the order they happened."""
    items: list[ComplaintCmd | SurveyCmd] = [*feedback.complaints, *feedback.surveys]
    items.sort(key=lambda i: i.filed_at if isinstance(i, ComplaintCmd) else i.answered_at)
    return items


@dataclass
class _FeedbackSender:
    """Sends complaints and surveys to the feedback API, each with its own date: a complaint with
    ``filed_at`` and the steps it has taken, each with its ``at`` (one request); ``answered_at``.

    One request per complaint matters: segmentation grades a customer as of its clock (the day after the
    data) each time it reads their events; a complaint that arrived step by step would be seen "still
    open, past its SLA" until its resolution arrives, and the churn alert that raises stays open after
    (alerts close only well below the level that raises them)."""

    client: httpx.AsyncClient
    url: str
    report: LoadReport

    async def item(self, item: ComplaintCmd | SurveyCmd) -> None:
        if isinstance(item, SurveyCmd):
            await _send_with_retry("surveys", item, self._survey, self.report)
        else:
            await self._complaint(item)

    def _survey(self, cmd: SurveyCmd) -> Awaitable[httpx.Response]:
        return self.client.post(f"{self.url}/surveys", json=survey_body(cmd))

    def _file(self, cmd: ComplaintCmd) -> Awaitable[httpx.Response]:
        return self.client.post(f"{self.url}/complaints", json=complaint_body(cmd))

    async def _complaint(self, cmd: ComplaintCmd) -> None:
        filed = await _send_with_retry("complaints", cmd, self._file, self.report)
        if filed is None:
            self.report.failed["complaint steps"] += len(cmd.steps)  # the filing's failure says why
            return
        if filed is Outcome.CREATED:
            self.report.created["complaint steps"] += len(cmd.steps)  # filed with them
            return
        steps = await self._remaining(cmd)  # filed by an earlier run: it may have stopped half-way

        def send(step: ComplaintStep) -> Awaitable[httpx.Response]:
            return self.client.post(f"{self.url}/complaints/{cmd.complaint_id}/{step.step}", json=step_body(step))

        for done, step in enumerate(steps):
            if await _send_with_retry("complaint steps", step, send, self.report) is None:
                self.report.failed["complaint steps"] += len(steps) - done - 1  # cannot follow a failed step
                return

    async def _remaining(self, cmd: ComplaintCmd) -> tuple[ComplaintStep, ...]:
        """The steps after the ones a complaint filed earlier has taken (known by status and reopenings)."""
        try:
            response = await self.client.get(f"{self.url}/complaints/{cmd.complaint_id}")
            state = response.json()
            reached = (state["status"], state["reopen_count"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            reached = None
        for done in range(len(cmd.steps), -1, -1):
            taken = cmd.steps[:done]
            if reached == (status_after(taken), sum(s.step is Step.REOPEN for s in taken)):
                self.report.already["complaint steps"] += done
                return cmd.steps[done:]
        self.report.failed["complaint steps"] += len(cmd.steps)
        if len(self.report.failures) < 20:
            self.report.failures.append(f"complaint steps: {cmd.complaint_id} stands at {reached}, off its path")
        return ()


def complaint_body(cmd: ComplaintCmd) -> dict[str, object]:
    """``POST /complaints``, filed on its own date (the SLA deadlines run from it) with its steps."""
    return {
        "complaint_id": cmd.complaint_id,
        "customer_id": cmd.customer_id,
        "category": cmd.category,
        "severity": cmd.severity,
        "summary": cmd.summary,
        "order_id": cmd.order_id,
        "filed_at": cmd.filed_at.isoformat(),
        "steps": [{"step": str(step.step), **step_body(step)} for step in cmd.steps],
    }


def survey_body(cmd: SurveyCmd) -> dict[str, object]:
    """``POST /surveys``, with the answer's own date."""
    body: dict[str, object] = {
        "survey_id": cmd.survey_id,
        "customer_id": cmd.customer_id,
        "order_id": cmd.order_id,
        "answered_at": cmd.answered_at.isoformat(),
    }
    body |= {k: v for k, v in (("csat", cmd.csat), ("nps", cmd.nps), ("comment", cmd.comment)) if v is not None}
    return body


def step_body(step: ComplaintStep) -> dict[str, str]:
    """The body of ``POST /complaints/{id}/<step>``, dated when the step happened (``at``)."""
    body = {"at": step.at.isoformat()}
    if step.step is Step.ACKNOWLEDGE and step.note:
        body["acknowledged_by"] = step.note
    elif step.step is Step.RESOLVE:
        body["resolution"] = step.note or "resolved"
    elif step.step is Step.REOPEN:
        body["reason"] = step.note or "resolution rejected"
    return body


@dataclass(frozen=True)
class _OrderBundle:
    order: OrderCmd
    returns: list[ReturnCmd]
    payment: PaymentCmd | None


def _bundles(plan: LoadPlan, payments: Sequence[PaymentCmd]) -> list[_OrderBundle]:
    """Each order with its returns and its payment, sent in that order right after it: receivables are
    settled as they are created, so no sweep during the load sees a long-past invoice still unpaid."""
    returns: dict[str, list[ReturnCmd]] = {}
    for cmd in plan.returns:
        returns.setdefault(cmd.order_id, []).append(cmd)
    paid = {p.order_id: p for p in payments}
    return [_OrderBundle(o, returns.get(o.order_id, []), paid.get(o.order_id)) for o in plan.orders]


async def _phase(
    name: str,
    items: Sequence[T],
    handle: Callable[[T], Awaitable[object]],
    concurrency: int,
    progress: Progress | None,
) -> None:
    task = progress.add_task(name, total=len(items)) if progress else None
    queue: asyncio.Queue[T] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            item = queue.get_nowait()
            await handle(item)
            if progress is not None and task is not None:
                progress.advance(task)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class Outcome(StrEnum):
    CREATED = "created"
    ALREADY = "already"  # a 409 "already exists": an earlier run sent it


async def _send_with_retry(
    name: str, item: T, send: Callable[[T], Awaitable[httpx.Response]], report: LoadReport
) -> Outcome | None:
    """Send ``item``, retrying what a retry can mend; count the outcome; None when it failed."""
    attempt = 0
    waited_for_customer, customer_delay = 0.0, 0.1
    while attempt < 12:
        attempt += 1
        try:
            response = await send(item)
        except httpx.TransportError as exc:
            error = repr(exc)
        else:
            if response.status_code in (200, 201):
                report.created[name] += 1
                return Outcome.CREATED
            error = f"HTTP {response.status_code}: {response.text[:300]}"
            if response.status_code == 422 and _conflict_code(response) == "unknown_customer":
                # orders learns of a new customer through crm.customers.v1 (relay → Kafka → its consumer):
                # wait for it with backoff, up to UNKNOWN_CUSTOMER_PATIENCE_S, without spending attempts
                if waited_for_customer >= UNKNOWN_CUSTOMER_PATIENCE_S:
                    break
                attempt -= 1
                await asyncio.sleep(customer_delay)
                waited_for_customer += customer_delay
                customer_delay = min(customer_delay * 2, 2.0)
                continue
            if response.status_code == 409:
                if _conflict_code(response) == "version_conflict":
                    # a concurrent command on the same aggregate won the race: retry on its fresh state
                    await asyncio.sleep(random.uniform(0.005, 0.05))
                    continue
                if "already" in response.text:
                    report.already[name] += 1
                    return Outcome.ALREADY
                break
            if response.status_code < 500:
                break
        await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
    report.failed[name] += 1
    if len(report.failures) < 20:
        report.failures.append(f"{name}: {error}")
    return None


def _conflict_code(response: httpx.Response) -> str | None:
    try:
        return response.json().get("code")
    except ValueError:
        return None


def make_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
