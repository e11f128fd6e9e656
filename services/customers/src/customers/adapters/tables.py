"""Current shape of the customers service's own tables (migrations never import this module).

``customer_keys``: one data key per customer, deleted on erasure (crypto-shredding).
``customer_directory``: the searchable list of customers, one row per customer, written in the same
transaction as the events that change it. Neither holds personal data in clear.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, LargeBinary, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

customer_keys = Table(
    "customer_keys",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("key_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("data_key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

customer_directory = Table(
    "customer_directory",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("company_name", Text, nullable=False),
    Column("region", Text, nullable=False),
    Column("country", Text),
    Column("industry", Text),
    Column("size_band", Text),
    Column("channel", Text),
    Column("need_profile", Text),
    Column("stage", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("credit_rating", Text),
    Column("contacts", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
