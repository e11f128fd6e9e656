"""PostgreSQL implementation of :class:`feedback.application.ports.Complaints`.

The ``complaints`` table (migration 0003) is the read model: one row per complaint, upserted by a
hook that :meth:`AggregateRepository.save` runs *inside* the append transaction — so the row and the
events it follows from commit together or not at all. The sweep reads it through a partial index on
``next_escalation_at`` (only complaints with a watched deadline are in that index), the API through
``(customer_id, filed_at)``.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from feedback.application.ports import ComplaintPage, ComplaintSummary, Due
from feedback.domain.complaint import Complaint, ComplaintStatus
from shared.db.statements import upsert_sql
from shared.db.tables import events as events_table
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import ConcurrencyConflict, StatementHook, StoredEvent

metadata = MetaData()

complaints_table = Table(
    "complaints",
    metadata,
    Column("complaint_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("order_id", Text),
    Column("filed_at", DateTime(timezone=True), nullable=False),
    Column("acknowledge_by", DateTime(timezone=True), nullable=False),
    Column("resolve_by", DateTime(timezone=True), nullable=False),
    Column("escalations", Integer, nullable=False),
    Column("next_escalation_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

_ROW_FIELDS = [
    "complaint_id",
    "customer_id",
    "status",
    "severity",
    "category",
    "order_id",
    "filed_at",
    "acknowledge_by",
    "resolve_by",
    "escalations",
    "next_escalation_at",
    "version",
]


def _row(summary: ComplaintSummary) -> dict[str, object]:
    row = {name: getattr(summary, name) for name in _ROW_FIELDS}
    row["status"] = summary.status.value
    return row


def _summary(row: dict[str, object]) -> ComplaintSummary:
    values = {name: row[name] for name in _ROW_FIELDS}
    values["status"] = ComplaintStatus(str(row["status"]))
    return ComplaintSummary(**values)  # type: ignore[arg-type]


# Runs inside the append statement; a row never goes back in version (a late re-index cannot undo a
# newer command's row).
_UPSERT = upsert_sql(
    complaints_table,
    _ROW_FIELDS,
    key=("complaint_id",),
    touch="updated_at",
    only_if="complaints.version <= EXCLUDED.version",
)


def summary_hook(summary: ComplaintSummary) -> StatementHook:
    """The read-model row of ``summary``, written with the append that it follows from."""
    row = _row(summary)
    return StatementHook(_UPSERT, tuple(row[name] for name in _ROW_FIELDS))


class PostgresComplaints:
    def __init__(self, engine: AsyncEngine, repository: AggregateRepository[Complaint]) -> None:
        self.engine = engine
        self.repository = repository

    def connection(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self.repository.connection()

    async def get(self, complaint_id: str, *, tx: Any = None) -> Complaint | None:
        return await self.repository.get(complaint_id, tx=tx)

    async def history(self, complaint_id: str) -> list[StoredEvent]:
        return await self.repository.history(complaint_id)

    async def save(
        self,
        complaint: Complaint,
        *,
        correlation_id: str,
        causation_id: str | None = None,
        expected_version: int | None = None,
        tx: Any = None,
    ) -> None:
        await self.repository.save(
            complaint,
            correlation_id=correlation_id,
            causation_id=causation_id,
            expected_version=expected_version,
            hook=summary_hook(ComplaintSummary.of(complaint)),
            tx=tx,
        )

    async def due_for_escalation(
        self, now: datetime, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Due]:
        t = complaints_table
        query = (
            select(t.c.complaint_id, t.c.next_escalation_at)
            .where(t.c.next_escalation_at.is_not(None), t.c.next_escalation_at < now)
            .order_by(t.c.next_escalation_at, t.c.complaint_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(tuple_(t.c.next_escalation_at, t.c.complaint_id) > tuple_(*after))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Due(complaint_id=r.complaint_id, next_escalation_at=r.next_escalation_at) for r in rows]

    async def for_customer(
        self, customer_id: str, *, status: ComplaintStatus | None, limit: int, offset: int
    ) -> ComplaintPage:
        t = complaints_table
        where = [t.c.customer_id == customer_id]
        if status is not None:
            where.append(t.c.status == status.value)
        page = (
            select(*(t.c[name] for name in _ROW_FIELDS))
            .where(*where)
            .order_by(t.c.filed_at.desc(), t.c.complaint_id)
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(t).where(*where)
        async with self.engine.connect() as conn:
            items = [_summary(dict(r)) for r in (await conn.execute(page)).mappings()]
            total = int((await conn.execute(count)).scalar_one())
        return ComplaintPage(items=items, total=total, limit=limit, offset=offset)

    async def reindex_all(self, *, correlation_id: str = "reindex") -> int:
        """Rewrite every complaint's row from its stream (e.g. for complaints filed before the read
        model existed, or after a rule change); returns how many rows were written."""
        query = select(events_table.c.stream_id).where(events_table.c.aggregate_type == Complaint.aggregate_type)
        async with self.engine.connect() as conn:
            stream_ids = sorted(set((await conn.execute(query.distinct())).scalars()))
        prefix = Complaint.stream_id_for("")
        written = 0
        for stream_id in stream_ids:
            complaint = await self.get(stream_id.removeprefix(prefix))
            if complaint is None:
                continue
            try:
                await self.save(complaint, correlation_id=correlation_id)
            except ConcurrencyConflict:
                continue  # a command moved the stream meanwhile and wrote a newer row itself
            written += 1
        return written
