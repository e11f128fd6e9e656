"""consumer_offsets.last_record_fingerprint: the record before each stored offset, compared on
assignment so that a replaced log is noticed even when it is longer than the stored offset (core schema v3).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from shared.db import core_schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    core_schema.upgrade_v3()


def downgrade() -> None:
    core_schema.downgrade_v3()
