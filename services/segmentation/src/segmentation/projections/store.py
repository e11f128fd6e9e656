"""Load and save customers for the engine: batched reads (rows locked FOR UPDATE), bulk upserts.

One :class:`CustomerRecord` is everything the engine needs about a customer: the facts, the standing the
grading remembers, what was last published (to detect changes) and the customer's latest churn alert.
Loading N customers is five statements whatever N is; saving is one upsert per table.
"""

from __future__ import annotations

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
from segmentation.domain.facts import ComplaintFact, CustomerFacts, OrderFact, Profile, SurveyFact
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


_PROFILE = ("registered", "company_name", "region", "deactivated", "events_applied", "last_event_at")
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
    records = {
        r["customer_id"]: _record(r) for r in await db.fetch(_LOAD_SEGMENTS_LOCKED if lock else _LOAD_SEGMENTS, ids)
    }
    missing = []
    for customer_id, record in records.items():
        cached = cache.take(customer_id, record.facts_token) if cache is not None else None
        if cached is not None:
            record.facts = cached
        elif record.facts_token is not None:
            missing.append(customer_id)
    if missing:
        for row in await db.fetch(_LOAD_ORDERS, missing):
            records[row[0]].facts.orders[row[1]] = OrderFact(*row[1:])
        for row in await db.fetch(_LOAD_COMPLAINTS, missing):
            records[row[0]].facts.complaints[row[1]] = ComplaintFact(*row[1:])
        for row in await db.fetch(_LOAD_SURVEYS, missing):
            records[row[0]].facts.surveys[row[1]] = SurveyFact(*row[1:])
    alert_ids = [r.alert_id for r in records.values() if r.alert_id]
    if alert_ids:
        for row in await db.fetch(_LOAD_ALERTS + (" FOR UPDATE" if lock else ""), alert_ids):
            records[row["customer_id"]].alert = alert_from_row(row)
    return records


def _record(row: Any) -> CustomerRecord:
    if row["assessed_at"] is None:  # a placeholder: nothing known or published yet
        return CustomerRecord(facts=CustomerFacts.new(row["customer_id"]))
    profile = Profile(customer_id=row["customer_id"], sales_stage=row["stage"], **{k: row[k] for k in _PROFILE})
    standing = Standing(
        tier=ValueTier(row["value_tier"]),
        tier_below=row["tier_below"],
        anchor_tier=ValueTier(row["anchor_tier"]) if row["anchor_tier"] else None,
        anchor_below=row["anchor_below"],
        lifecycle=LifecycleStage(row["lifecycle_stage"]) if row["lifecycle_stage"] else None,
    )
    published = Published(
        tier=ValueTier(row["value_tier"]),
        segment=row["rfm_segment"],
        activity=row["activity_status"],
        churn_score=row["churn_score"],
        lifecycle=row["lifecycle_stage"],
    )
    return CustomerRecord(
        facts=CustomerFacts(profile=profile),
        standing=standing,
        published=published,
        version=row["segmentation_version"],
        first_seen_at=row["first_seen_at"],
        alert_id=row["alert_id"],
        facts_token=row["facts_token"],
    )


def alert_from_row(row: Any) -> Alert:
    values = {k: row[k] for k in _ALERT}
    values["state"] = AlertState(values["state"])
    return Alert(reasons=tuple(row["reasons"]), **values)


def alert_row(alert_id: str, customer_id: str, alert: Alert) -> dict[str, Any]:
    row = {k: getattr(alert, k) for k in _ALERT}
    row.update(alert_id=alert_id, customer_id=customer_id, state=str(alert.state), reasons=list(alert.reasons))
    return row


def fact_rows(facts: CustomerFacts) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of the facts that changed since loading (orders, complaints, surveys)."""
    cid = facts.customer_id
    orders = [
        {"customer_id": cid, "order_id": o.order_id, **{k: getattr(o, k) for k in _ORDER}}
        for o in (facts.orders[i] for i in sorted(facts.changed_orders))
    ]
    complaints = [
        {"customer_id": cid, "complaint_id": c.complaint_id, **{k: getattr(c, k) for k in _COMPLAINT}}
        for c in (facts.complaints[i] for i in sorted(facts.changed_complaints))
    ]
    surveys = [
        {"customer_id": cid, "survey_id": s.survey_id, "answered_at": s.answered_at, "csat": s.csat, "nps": s.nps}
        for s in (facts.surveys[i] for i in sorted(facts.changed_surveys))
    ]
    return orders, complaints, surveys


@dataclass
class Changes:
    """Everything one pass of the engine writes, collected so each table gets one statement."""

    segments: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    complaints: list[dict[str, Any]] = field(default_factory=list)
    surveys: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    alert_log: list[dict[str, Any]] = field(default_factory=list)


_JSON_COLUMNS = frozenset({"churn_reasons", "details", "detail", "reasons"})
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
    db = await driver(conn)
    for table, rows in (
        ("customer_segments", changes.segments),
        ("customer_orders", changes.orders),
        ("customer_complaints", changes.complaints),
        ("customer_surveys", changes.surveys),
        ("churn_alerts", changes.alerts),
        ("segment_history", changes.history),
        ("alert_log", changes.alert_log),
    ):
        if rows:
            columns = tuple(rows[0])
            await db.executemany(_statement(table, columns), list(map(_row_encoder(columns), rows)))


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
        return values  # type: ignore[return-value]

    def encode(row: dict[str, Any]) -> tuple[Any, ...]:
        out = list(values(row))
        for i in as_json:
            out[i] = json.dumps(out[i])
        return tuple(out)

    return encode


async def all_customer_ids(conn: AsyncConnection) -> list[str]:
    query = select(customer_segments.c.customer_id).order_by(customer_segments.c.customer_id)
    return list((await conn.execute(query)).scalars())
