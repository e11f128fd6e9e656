"""The customer directory: a small read model for listing and filtering customers.

One row per customer, rewritten whole from the aggregate's state by a transaction hook of the append
that changed it — so the row commits with the events or not at all, and writing it twice is harmless.
It holds no personal data (only a contact count), so erasure never needs to touch it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from customers.adapters.tables import customer_directory
from customers.domain.customer import Customer
from shared.db.statements import upsert_sql
from shared.eventsourcing.store import StatementHook


@dataclass(frozen=True)
class DirectoryEntry:
    customer_id: str
    company_name: str
    region: str
    country: str | None
    industry: str | None
    size_band: str | None
    channel: str | None
    need_profile: str | None
    stage: str
    active: bool
    credit_rating: str | None
    contacts: int
    version: int
    registered_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DirectoryPage:
    entries: list[DirectoryEntry]
    total: int


_COLUMNS = (
    "customer_id",
    "company_name",
    "region",
    "country",
    "industry",
    "size_band",
    "channel",
    "need_profile",
    "stage",
    "active",
    "credit_rating",
    "contacts",
    "version",
)
# Runs inside the append statement: written whole from the aggregate, with the events or not at all.
_UPSERT = upsert_sql(customer_directory, _COLUMNS, key=("customer_id",), touch="updated_at")


def directory_row(customer: Customer) -> dict[str, object]:
    assert customer.profile is not None
    profile = customer.profile
    return {
        "customer_id": customer.id,
        "company_name": profile.company_name,
        "region": profile.region,
        "country": profile.country,
        "industry": profile.industry,
        "size_band": profile.size_band,
        "channel": profile.channel,
        "need_profile": profile.need_profile,
        "stage": str(customer.stage),
        "active": customer.active,
        "credit_rating": None if customer.credit_terms is None else str(customer.credit_terms.rating),
        "contacts": len(customer.contacts),
        "version": customer.version,
    }


class CustomerDirectory:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def record(self, customer: Customer) -> StatementHook:
        """A hook that writes ``customer``'s row (as of its pending events) with the append."""
        row = directory_row(customer)
        return StatementHook(_UPSERT, tuple(row[c] for c in _COLUMNS))

    async def search(
        self, *, region: str | None, stage: str | None, active: bool | None, limit: int, offset: int
    ) -> DirectoryPage:
        conditions = []
        if region is not None:
            conditions.append(customer_directory.c.region == region)
        if stage is not None:
            conditions.append(customer_directory.c.stage == stage)
        if active is not None:
            conditions.append(customer_directory.c.active == active)
        page = (
            select(customer_directory)
            .where(*conditions)
            .order_by(customer_directory.c.registered_at, customer_directory.c.customer_id)
            .limit(limit)
            .offset(offset)
        )
        total = select(func.count()).select_from(customer_directory).where(*conditions)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(page)).all()
            count = (await conn.execute(total)).scalar_one()
        return DirectoryPage([DirectoryEntry(**row._mapping) for row in rows], int(count))
