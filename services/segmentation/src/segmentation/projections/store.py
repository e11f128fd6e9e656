"""Load and save customers for the engine: batched reads (rows locked FOR UPDATE), bulk upserts.

One :class:`CustomerRecord` is everything the engine needs about a customer: the facts, the standing the
grading remembers, what was last published (to detect changes) and the customer's latest churn alert.
Loading N customers is five statements whatever N is; saving is one upsert per table.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import operator
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentation.domain.activity import LifecycleStage
from segmentation.domain.churn import Alert, AlertState
from segmentation.domain.facts import (
    ComplaintFact,
    CustomerFacts,
    OrderFact,
    Profile,
    SurveyFact,
    label,
    label_or_none,
)
from segmentation.domain.grading import Standing
from segmentation.projections.facts_cache import FactsCache
from segmentation.projections.read_model import (
    customer_segments,
)
from shared.events.vocabulary import ValueTier

#: Consumers take this lock shared, recalibration exclusively: a recalibration sees every committed
#: batch and none in flight, so the consumer offsets it records match the facts it graded.
ENGINE_LOCK = 0x5E6_7E5
LOCK_SHARED = text(f"SELECT pg_advisory_xact_lock_shared({ENGINE_LOCK})")
LOCK_EXCLUSIVE = text(f"SELECT pg_advisory_xact_lock({ENGINE_LOCK})")


@dataclass(frozen=True)
class Published:
    """The grades as last stored (a change against these is history and an event)."""

    tier: ValueTier | None = None  # None: the customer has no row yet
    segment: str | None = None
    activity: str | None = None
    churn_score: int = 0
    lifecycle: str | None = None


@dataclass
class CustomerRecord:
    facts: CustomerFacts
    standing: Standing = field(default_factory=Standing)
    published: Published = field(default_factory=Published)
    version: int = 0  # segmentation_version: aggregate_version of this customer's outgoing events
    first_seen_at: datetime | None = None
    alert_id: str | None = None
    alert: Alert | None = None
    facts_token: uuid.UUID | None = None  # changes whenever the facts do (see FactsCache)

    @property
    def customer_id(self) -> str:
        return self.facts.customer_id


_ORDER = (
    "placed_at",
    "amount",
    "currency",
    "cancelled",
    "cancelled_amount",
    "returned_amount",
    "credit_held",
    "due_date",
    "overdue_amount",
    "paid_in_full",
    "credit_version",
    "outstanding_amount",
    "receivable_version",
)
_COMPLAINT = (
    "filed_at",
    "category",
    "severity",
    "acknowledge_by",
    "resolve_by",
    "status",
    "acknowledged",
    "escalated",
    "reopened_count",
    "status_version",
)
_ALERT = (
    "state",
    "raised_at",
    "raised_score",
    "last_score",
    "last_seen_at",
    "occurrences",
    "snoozed_until",
    "handled_at",
    "handled_by",
    "closed_at",
    "close_reason",
    "rearmed",
)


_SEGMENT_COLUMNS = (
    "customer_id, registered, company_name, region, stage, deactivated, events_applied, last_event_at, "
    "company_name_version, region_version, deactivated_version, "
    "value_tier, tier_below, anchor_tier, anchor_below, lifecycle_stage, rfm_segment, activity_status, "
    "churn_score, segmentation_version, first_seen_at, alert_id, assessed_at, facts_token"
)
#: Placeholder rows, so that two consumers seeing a new customer at once serialise on its row lock
#: (without them both would build the customer from nothing and the second upsert would lose the first).
_ENSURE_ROWS = (
    "INSERT INTO customer_segments (customer_id, registered, orders_count, cancelled_orders, gross_revenue, "
    "cancelled_amount, returned_amount, net_revenue, complaints_total, open_complaints, events_applied, "
    "segmentation_version, first_seen_at, value_tier) "
    "SELECT id, false, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, now(), 'prospect' FROM unnest($1::text[]) AS id "
    "ON CONFLICT (customer_id) DO NOTHING"
)
_LOAD_SEGMENTS = f"SELECT {_SEGMENT_COLUMNS} FROM customer_segments WHERE customer_id = ANY($1::text[])"
_LOAD_SEGMENTS_LOCKED = _LOAD_SEGMENTS + " ORDER BY customer_id FOR UPDATE"
_LOAD_ORDERS = (
    f"SELECT customer_id, order_id, {', '.join(_ORDER)} FROM customer_orders WHERE customer_id = ANY($1::text[])"
)
_LOAD_COMPLAINTS = (
    f"SELECT customer_id, complaint_id, {', '.join(_COMPLAINT)} FROM customer_complaints "
    "WHERE customer_id = ANY($1::text[])"
)
_LOAD_SURVEYS = (
    "SELECT customer_id, survey_id, answered_at, csat, nps FROM customer_surveys WHERE customer_id = ANY($1::text[])"
)
_LOAD_ALERTS = (
    f"SELECT alert_id, customer_id, reasons, {', '.join(_ALERT)} FROM churn_alerts WHERE alert_id = ANY($1::text[])"
)


async def driver(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under ``conn``, for the hot path (no statement compilation per batch).

    Only inside a transaction SQLAlchemy has already begun (it begins lazily, on its first statement):
    statements sent here directly would otherwise run outside it."""
    raw = (await conn.get_raw_connection()).driver_connection
    if raw is None or not raw.is_in_transaction():
        raise RuntimeError("the engine's statements must run in a transaction begun by a statement through SQLAlchemy")
    return raw


async def load_records(
    conn: AsyncConnection,
    customer_ids: Sequence[str],
    *,
    lock: bool,
    create: bool = False,
    cache: FactsCache | None = None,
) -> dict[str, CustomerRecord]:
    """The records of ``customer_ids`` (rows locked in id order when ``lock``); with ``create``, customers
    not seen yet get a placeholder row first, so every requested record exists and is locked. Facts come
    from ``cache`` where it holds them at the row's token, else from the fact tables."""
    if not customer_ids:
        return {}
    db = await driver(conn)
    ids = list(customer_ids)
    if create:
        await db.execute(_ENSURE_ROWS, ids)
    records = {r[0]: _record(r) for r in await db.fetch(_LOAD_SEGMENTS_LOCKED if lock else _LOAD_SEGMENTS, ids)}
    missing = []
    for customer_id, record in records.items():
        cached = cache.take(customer_id, record.facts_token) if cache is not None else None
        if cached is not None:
            record.facts = cached
        elif record.facts_token is not None:
            missing.append(customer_id)
    if missing:
        for row in await db.fetch(_LOAD_ORDERS, missing):
            records[row[0]].facts.orders[row[1]] = _order(row)
        for row in await db.fetch(_LOAD_COMPLAINTS, missing):
            records[row[0]].facts.complaints[row[1]] = _complaint(row)
        for row in await db.fetch(_LOAD_SURVEYS, missing):
            records[row[0]].facts.surveys[row[1]] = SurveyFact(*row[1:])
    alert_ids = [r.alert_id for r in records.values() if r.alert_id]
    if alert_ids:
        for row in await db.fetch(_LOAD_ALERTS + (" FOR UPDATE" if lock else ""), alert_ids):
            records[row["customer_id"]].alert = alert_from_row(row)
    return records


_TIERS = {str(t): t for t in ValueTier}
_LIFECYCLE = {str(s): s for s in LifecycleStage}


def _record(row: Any) -> CustomerRecord:
    """The record of a ``_LOAD_SEGMENTS`` row (columns unpacked by position: one per customer per poll)."""
    (
        customer_id,
        registered,
        company_name,
        region,
        stage,
        deactivated,
        events_applied,
        last_event_at,
        company_name_version,
        region_version,
        deactivated_version,
        value_tier,
        tier_below,
        anchor_tier,
        anchor_below,
        lifecycle_stage,
        rfm_segment,
        activity_status,
        churn_score,
        segmentation_version,
        first_seen_at,
        alert_id,
        assessed_at,
        facts_token,
    ) = row
    if assessed_at is None:  # a placeholder: nothing known or published yet
        return CustomerRecord(facts=CustomerFacts.new(customer_id))
    profile = Profile(
        customer_id,
        registered,
        company_name,
        label_or_none(region),
        label_or_none(stage),
        deactivated,
        events_applied,
        last_event_at,
        company_name_version,
        region_version,
        deactivated_version,
    )
    tier = _TIERS[value_tier]
    lifecycle = _LIFECYCLE[lifecycle_stage] if lifecycle_stage else None
    standing = Standing(tier, tier_below, _TIERS[anchor_tier] if anchor_tier else None, anchor_below, lifecycle)
    published = Published(tier, rfm_segment, activity_status, churn_score, lifecycle_stage)
    return CustomerRecord(
        facts=CustomerFacts(profile=profile),
        standing=standing,
        published=published,
        version=segmentation_version,
        first_seen_at=first_seen_at,
        alert_id=alert_id,
        facts_token=facts_token,
    )


def _order(row: Any) -> OrderFact:
    """The fact of a ``_LOAD_ORDERS`` row; the currency shared (see ``facts.label``), as when folded."""
    (_, order_id, placed_at, amount, currency, *rest) = row
    return OrderFact(order_id, placed_at, amount, label_or_none(currency), *rest)


def _complaint(row: Any) -> ComplaintFact:
    """The fact of a ``_LOAD_COMPLAINTS`` row; category, severity and status shared strings."""
    (_, complaint_id, filed_at, category, severity, acknowledge_by, resolve_by, status, *rest) = row
    return ComplaintFact(
        complaint_id,
        filed_at,
        label_or_none(category),
        label_or_none(severity),
        acknowledge_by,
        resolve_by,
        label(status),
        *rest,
    )


def alert_from_row(row: Any) -> Alert:
    values = {k: row[k] for k in _ALERT}
    values["state"] = AlertState(values["state"])
    return Alert(reasons=tuple(row["reasons"]), **values)


def alert_row(alert_id: str, customer_id: str, alert: Alert) -> dict[str, Any]:
    row = {k: getattr(alert, k) for k in _ALERT}
    row.update(alert_id=alert_id, customer_id=customer_id, state=str(alert.state), reasons=list(alert.reasons))
    return row


def fact_rows(facts: CustomerFacts) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows of the facts that changed since loading (orders, complaints, surveys), as driver arguments
    in :data:`ORDER_COLUMNS`, :data:`COMPLAINT_COLUMNS`, :data:`SURVEY_COLUMNS` order."""
    cid = facts.customer_id
    orders = [
        (
            cid,
            o.order_id,
            o.placed_at,
            o.amount,
            o.currency,
            o.cancelled,
            o.cancelled_amount,
            o.returned_amount,
            o.credit_held,
            o.due_date,
            o.overdue_amount,
            o.paid_in_full,
            o.credit_version,
            o.outstanding_amount,
            o.receivable_version,
        )
        for o in (facts.orders[i] for i in sorted(facts.changed_orders))
    ]
    complaints = [
        (
            cid,
            c.complaint_id,
            c.filed_at,
            c.category,
            c.severity,
            c.acknowledge_by,
            c.resolve_by,
            c.status,
            c.acknowledged,
            c.escalated,
            c.reopened_count,
            c.status_version,
        )
        for c in (facts.complaints[i] for i in sorted(facts.changed_complaints))
    ]
    surveys = [
        (cid, s.survey_id, s.answered_at, s.csat, s.nps)
        for s in (facts.surveys[i] for i in sorted(facts.changed_surveys))
    ]
    return orders, complaints, surveys


#: The columns of a ``customer_segments`` row as ``rows.segment_row`` returns it (in this order).
SEGMENT_COLUMNS = (
    "customer_id",
    "registered",
    "company_name",
    "region",
    "stage",
    "deactivated",
    "company_name_version",
    "region_version",
    "deactivated_version",
    "orders_count",
    "cancelled_orders",
    "gross_revenue",
    "cancelled_amount",
    "returned_amount",
    "net_revenue",
    "currency",
    "first_order_at",
    "last_order_at",
    "complaints_total",
    "open_complaints",
    "events_applied",
    "last_event_at",
    "segmentation_version",
    "first_seen_at",
    "value_tier",
    "candidate_tier",
    "tier_below",
    "anchor_tier",
    "anchor_below",
    "calibration_id",
    "net_contribution",
    "live_orders",
    "window_orders",
    "recency_days",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "lifecycle_stage",
    "median_gap_days",
    "average_order_value",
    "spend_last_90",
    "spend_previous_90",
    "activity_status",
    "activity_reason",
    "churn_score",
    "churn_band",
    "churn_reasons",
    "complaints_past_sla",
    "complaints_reopened",
    "latest_csat",
    "latest_nps",
    "csat_average",
    "nps",
    "overdue_amount",
    "overdue_bucket",
    "credit_holds",
    "alert_id",
    "facts_token",
    "assessed_at",
)


ORDER_COLUMNS = ("customer_id", "order_id", *_ORDER)
COMPLAINT_COLUMNS = ("customer_id", "complaint_id", *_COMPLAINT)
SURVEY_COLUMNS = ("customer_id", "survey_id", "answered_at", "csat", "nps")


@dataclass
class Changes:
    """Everything one pass of the engine writes, collected so each table gets one statement.

    Segment and fact rows are tuples in their table's column order (the hot path: one per assessed
    customer); the rarer history, alert and log rows are dicts."""

    segments: list[tuple[Any, ...]] = field(default_factory=list)
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    complaints: list[tuple[Any, ...]] = field(default_factory=list)
    surveys: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    alert_log: list[dict[str, Any]] = field(default_factory=list)


_JSON_COLUMNS = frozenset({"churn_reasons", "details", "detail", "reasons", "consumer_offsets"})
_TOUCH = {"customer_segments": ", updated_at = now()"}
_KEYS = {
    "customer_segments": ("customer_id",),
    "customer_orders": ("customer_id", "order_id"),
    "customer_complaints": ("customer_id", "complaint_id"),
    "customer_surveys": ("customer_id", "survey_id"),
    "churn_alerts": ("alert_id",),
}


async def save(conn: AsyncConnection, changes: Changes) -> None:
    """One statement per table (asyncpg ``executemany``, pipelined): upserts of state, inserts of logs."""
    await _write(await driver(conn), changes)


async def _write(db: asyncpg.Connection, changes: Changes) -> None:
    for table, columns, tuples in (
        ("customer_segments", SEGMENT_COLUMNS, changes.segments),
        ("customer_orders", ORDER_COLUMNS, changes.orders),
        ("customer_complaints", COMPLAINT_COLUMNS, changes.complaints),
        ("customer_surveys", SURVEY_COLUMNS, changes.surveys),
    ):
        if tuples:
            await db.executemany(_statement(table, columns), tuples)
    for table, rows in (
        ("churn_alerts", changes.alerts),
        ("segment_history", changes.history),
        ("alert_log", changes.alert_log),
    ):
        if rows:
            names: tuple[str, ...] = tuple(rows[0])
            await db.executemany(_statement(table, names), list(map(_row_encoder(names), rows)))


class ChangeStream:
    """Writes :class:`Changes` chunk by chunk while the caller goes on assessing the next chunk.

    PostgreSQL applies one chunk while Python assesses the next, instead of idling through the whole
    assessment and then making Python wait for all the writes. Rows reach each table in the order they
    were sent (history and log ids follow the assessment order, as with one :func:`save`). The connection
    runs one statement at a time: :meth:`send` first waits for the chunk in flight, and nothing else may
    use the connection until :meth:`close`, which also surfaces a failed chunk (the caller's transaction
    then rolls back).
    """

    def __init__(self, db: asyncpg.Connection) -> None:
        self.db = db
        self._in_flight: asyncio.Future[None] | None = None

    async def send(self, changes: Changes) -> None:
        await self._wait()
        self._in_flight = asyncio.ensure_future(_write(self.db, changes))
        await asyncio.sleep(0)  # let it put the chunk on the wire before the caller computes on

    async def close(self) -> None:
        await self._wait()

    async def abandon(self) -> None:
        """After a failure elsewhere: let the chunk in flight end (its outcome no longer matters)."""
        with contextlib.suppress(Exception):
            await self._wait()

    async def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            await in_flight


@functools.cache
def _statement(table: str, columns: tuple[str, ...]) -> str:
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    keys = _KEYS.get(table)
    if keys is None:
        return sql
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in keys)
    return f"{sql} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}{_TOUCH.get(table, '')}"


@functools.cache
def _row_encoder(columns: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """Row dict → statement arguments in ``columns`` order, JSON columns serialised (built once per shape)."""
    values = operator.itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
    as_json = [i for i, c in enumerate(columns) if c in _JSON_COLUMNS]
    if not as_json:
        return values

    def encode(row: dict[str, Any]) -> tuple[Any, ...]:
        out = list(values(row))
        for i in as_json:
            out[i] = json.dumps(out[i])
        return tuple(out)

    return encode


async def all_customer_ids(conn: AsyncConnection) -> list[str]:
    query = select(customer_segments.c.customer_id).order_by(customer_segments.c.customer_id)
    return list((await conn.execute(query)).scalars())
