"""Core tables of the orders database: event store, outbox, inbox, consumer offsets.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from shared.db import core_schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    core_schema.upgrade_v1()


def downgrade() -> None:
    core_schema.downgrade_v1()
